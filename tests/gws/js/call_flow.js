// Call control with the public genesys-workspace-client-js against drlab, the way the Genesys
// "basic call control" tutorial drives it: react to api 'CallStateChanged' events and use the
// call.id they carry for answerCall/holdCall/retrieveCall/releaseCall. Each call step reports what
// the client itself saw: the call's next event, whatever its state, with the client's own call
// list (api.voice.calls) at that event. Prints one JSON line per step; exit 0 on success.
//
// Usage: node call_flow.js BASE_URL USER PASSWORD DN SCENARIO [DESTINATION]
//   make-call DESTINATION           makeCall -> Dialing, releaseCall (still dialing) -> Released
//   make-call-answered DESTINATION  makeCall -> Dialing, the far end answers -> Established,
//                                   releaseCall -> Released
//   inbound                         'awaiting-call' (the test then places a call to DN): Ringing,
//                                   answer -> Established, hold -> Held, retrieve -> Established,
//                                   release -> Released
//   callee                          'awaiting-call': Ringing, answer -> Established, the far end
//                                   hangs up -> Released
//   data-and-settings               'awaiting-call': Ringing, answer, attachUserData,
//                                   updateUserData, deleteUserDataPair (each -> the call with its
//                                   userData), dndOn, setForward, cancelForward, dndOff (each ->
//                                   the DN with dnd and forwardTo), release -> Released
//   dtmf-event-clear                'awaiting-call': Ringing, answer, sendDTMF (-> the call),
//                                   sendUserEvent (-> EventUserEvent with its userData and
//                                   callUuid), clearCall -> Released
// Every scenario starts Ready and ends with the DN's next two states (drlab: NotReady with
// AfterCallWork after the release, then Ready when ACW is over), then destroy().
const {main, signOff, signOn, step} = require('./common');

const [base, user, password, dn, scenario, destination] = process.argv.slice(2);

function dnStep(state) {
  return {agentState: state.agentState, agentWorkMode: state.agentWorkMode};
}

// A call step: the event, the client's call list when it emitted it and, when `listing` (the
// script alone acts on the call, so nothing changes it meanwhile), GET /voice/calls as the
// client's generated VoiceApi (the one the wrapper calls) deserializes it into its Call model.
async function report(api, name, {message, calls}, listing) {
  const {call, notificationType} = message;
  const detail = {
    id: call.id,
    connId: call.connId,
    state: call.state,
    notificationType,
    callType: call.callType,
    capabilities: call.capabilities,
    ani: call.ani,
    dnis: call.dnis,
    participants: call.participants,
    clientCalls: calls,
  };
  if (listing) {
    const listed = await api.voice._api.getCalls();
    detail.restCalls = listed.data.calls.map((c) => ({id: c.id, state: c.state}));
  }
  step(name, detail);
  return call;
}

// Send a request on the call (null: none, the far end acts), then report the call's next event.
async function act(api, recorder, name, request, id, listing) {
  const next = recorder.call((message) => message.call.id === id, `the call after ${name}`);
  if (request) await request(id);
  return report(api, name, await next, listing);
}

async function placeCall(api, recorder, listing) {
  const first = recorder.call(() => true, 'the made call');
  await api.voice.makeCall(destination);
  return report(api, 'make-call', await first, listing);
}

async function receiveCall(api, recorder, listing) {
  const first = recorder.call(() => true, 'the call to this DN');
  step('awaiting-call', {});
  return report(api, 'ringing', await first, listing);
}

const PAIRS = [
  {key: 'Account', type: 'str', value: '42'},
  {key: 'Priority', type: 'int', value: 3},
];

// A call step that reports the call's user data as the client holds it.
async function dataStep(api, recorder, name, request, id) {
  const next = recorder.call((message) => message.call.id === id, `the call after ${name}`);
  await request(id);
  const {message} = await next;
  step(name, {
    id: message.call.id,
    state: message.call.state,
    notificationType: message.notificationType,
    userData: message.call.userData,
    clientUserData: api.voice.calls.get(id).userData,
  });
}

// A DN step: the client's DN after a settings request.
async function settingStep(api, recorder, name, request, predicate) {
  await request();
  const dn = await recorder.dn(predicate, `the DN after ${name}`);
  step(name, {dnd: dn.dnd, forwardTo: dn.forwardTo ?? null, capabilities: dn.capabilities});
}

// Two desktops on one call (make-call-answered, callee) change it concurrently: no listing.
const SCENARIOS = {
  'make-call': async (api, recorder) => {
    const call = await placeCall(api, recorder, true);
    await act(api, recorder, 'release', (id) => api.voice.releaseCall(id), call.id, true);
  },
  'make-call-answered': async (api, recorder) => {
    const call = await placeCall(api, recorder, false);
    await act(api, recorder, 'answered', null, call.id, false);
    await act(api, recorder, 'release', (id) => api.voice.releaseCall(id), call.id, false);
  },
  inbound: async (api, recorder) => {
    const call = await receiveCall(api, recorder, true);
    await act(api, recorder, 'answer', (id) => api.voice.answerCall(id), call.id, true);
    await act(api, recorder, 'hold', (id) => api.voice.holdCall(id), call.id, true);
    await act(api, recorder, 'retrieve', (id) => api.voice.retrieveCall(id), call.id, true);
    await act(api, recorder, 'release', (id) => api.voice.releaseCall(id), call.id, true);
  },
  'data-and-settings': async (api, recorder) => {
    const call = await receiveCall(api, recorder, false);
    await act(api, recorder, 'answer', (id) => api.voice.answerCall(id), call.id, false);
    const id = call.id;
    await dataStep(api, recorder, 'attach', (c) => api.voice.attachUserData(c, PAIRS), id);
    const update = [{key: 'Priority', type: 'int', value: 5}];
    await dataStep(api, recorder, 'update', (c) => api.voice.updateUserData(c, update), id);
    await dataStep(api, recorder, 'delete-pair', (c) => api.voice.deleteUserDataPair(c, 'Account'), id);
    await settingStep(api, recorder, 'dnd-on', () => api.voice.dndOn(), (d) => d.dnd === 'on');
    await settingStep(api, recorder, 'set-forward', () => api.voice.setForward('+15550009999'),
      (d) => d.forwardTo === '+15550009999');
    await settingStep(api, recorder, 'cancel-forward', () => api.voice.cancelForward(),
      (d) => !d.forwardTo);
    await settingStep(api, recorder, 'dnd-off', () => api.voice.dndOff(), (d) => d.dnd === 'off');
    await act(api, recorder, 'release', (c) => api.voice.releaseCall(c), id, false);
  },
  'dtmf-event-clear': async (api, recorder) => {
    const call = await receiveCall(api, recorder, false);
    await act(api, recorder, 'answer', (id) => api.voice.answerCall(id), call.id, false);
    await act(api, recorder, 'send-dtmf', (id) => api.voice.sendDTMF(id, '12#'), call.id, false);
    const told = recorder.next('EventUserEvent', () => true, 'EventUserEvent');
    await api.voice.sendUserEvent([{key: 'Campaign', type: 'str', value: 'Spring'}], call.callUuid);
    const {message} = await told;
    step('user-event', {userData: message.data.userData, callUuid: message.data.callUuid});
    await act(api, recorder, 'clear', (id) => api.voice.clearCall(id), call.id, false);
  },
  callee: async (api, recorder) => {
    const call = await receiveCall(api, recorder, false);
    await act(api, recorder, 'answer', (id) => api.voice.answerCall(id), call.id, false);
    await act(api, recorder, 'released', null, call.id, false);
  },
};

main(async () => {
  const flow = SCENARIOS[scenario];
  if (!flow) throw new Error(`unknown scenario ${scenario}`);
  const {api, recorder} = await signOn(base, user, password, dn);
  await api.voice.ready();
  step('dn', dnStep(await recorder.dn((d) => d.agentState === 'Ready', 'Ready')));
  await flow(api, recorder);
  step('dn', dnStep(await recorder.dn(() => true, 'the DN after the call')));
  step('dn', dnStep(await recorder.dn(() => true, 'the DN after ACW')));
  step('client-dn', dnStep(api.voice.dn));
  await signOff(api);
});
