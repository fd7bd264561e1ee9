// The public genesys-workspace-client-js against a drlab GWS node (or a proxy in front of it):
// token, initialize, activate-channels, LoggedIn, ready -> Ready,
// not-ready AfterCallWork -> NotReady, destroy. Prints one JSON line per step; exit 0 on success.
// Usage: node workspace_flow.js BASE_URL USER PASSWORD DN
const {main, signOff, signOn, step} = require('./common');

const [base, user, password, dn] = process.argv.slice(2);

main(async () => {
  const {api, recorder} = await signOn(base, user, password, dn);
  await api.voice.ready();
  step('dn', await recorder.dn((d) => d.agentState === 'Ready', 'Ready'));
  await api.voice.notReady('AfterCallWork');
  step('dn', await recorder.dn(
    (d) => d.agentState === 'NotReady' && d.agentWorkMode === 'AfterCallWork', 'NotReady'));
  await signOff(api);
});
