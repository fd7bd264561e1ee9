// What the drlab scripts driving the public genesys-workspace-client-js share: the lab's token,
// a recorder of the events the client emits (awaited in order, with a deadline), sign-on up to
// LoggedIn, and the step lines (one JSON object a line on stdout) the Python tests read.
const WorkspaceApi = require('genesys-workspace-client-js');

const TIMEOUT_MS = 10000;

function step(name, detail) {
  console.log(JSON.stringify({step: name, ...detail}));
}

async function token(base, user, password) {
  const body = new URLSearchParams({grant_type: 'password', username: user, password});
  const response = await fetch(`${base}/auth/v3/oauth/token`, {
    method: 'POST',
    body,
    headers: {Authorization: 'Basic ' + Buffer.from('external_api_client:secret').toString('base64')},
  });
  if (response.status !== 200) throw new Error(`token: HTTP ${response.status}`);
  return (await response.json()).access_token;
}

// Every 'DnStateChanged' and 'CallStateChanged' the client emits, by type in arrival order.
// next(type, ...) waits for the first matching event of that type after the last one it returned,
// so an event emitted before the wait began (ACW right after a release, say) is not missed, and
// the events of a type are consumed in the order they came. A call event is kept with the
// client's own call list (api.voice.calls) as it was when the client emitted the event.
class Recorder {
  constructor(api) {
    this.events = {DnStateChanged: [], CallStateChanged: [], EventUserEvent: []};
    this.cursors = {DnStateChanged: 0, CallStateChanged: 0, EventUserEvent: 0};
    this.waiters = new Set();
    for (const type of Object.keys(this.events)) {
      api.on(type, (message) => {
        const calls = type === 'CallStateChanged'
          ? [...api.voice.calls.values()].map((call) => ({id: call.id, state: call.state}))
          : undefined;
        this.events[type].push({message, calls});
        this.waiters.forEach((wake) => wake());
      });
    }
  }

  // The next matching event of the type: {message, calls}.
  next(type, predicate, what) {
    const events = this.events[type];
    return new Promise((resolve, reject) => {
      const look = () => {
        for (let index = this.cursors[type]; index < events.length; index++) {
          if (predicate(events[index].message)) {
            this.cursors[type] = index + 1;
            this.waiters.delete(look);
            clearTimeout(timer);
            resolve(events[index]);
            return;
          }
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(look);
        const seen = events.slice(this.cursors[type]).map(({message: m}) => {
          if (type === 'DnStateChanged') return m.dn.agentState;
          return type === 'CallStateChanged' ? `${m.call.id}:${m.call.state}` : JSON.stringify(m);
        });
        reject(new Error(`timeout waiting for ${what}; ${type} since: [${seen.join(', ')}]`));
      }, TIMEOUT_MS);
      this.waiters.add(look);
      look();
    });
  }

  // The DN (message.dn) of the next matching 'DnStateChanged'.
  async dn(predicate, what) {
    return (await this.next('DnStateChanged', (message) => predicate(message.dn), what)).message.dn;
  }

  // The next matching 'CallStateChanged': {message, calls}.
  call(predicate, what) {
    return this.next('CallStateChanged', predicate, what);
  }
}

// initialize (token) and activate-channels up to LoggedIn; the api and its recorder.
async function signOn(base, user, password, dn) {
  const api = new WorkspaceApi('drlab', base, 'false');
  const recorder = new Recorder(api);
  await api.initialize({token: await token(base, user, password)});
  step('initialized', {user: api.user});
  await api.activateChannels(user, dn);
  step('dn', await recorder.dn((d) => d.agentState === 'LoggedIn', 'LoggedIn'));
  return {api, recorder};
}

// destroy() = CometD disconnect + POST /logout, but 9.0.1 does not wait for the logout: the
// script must not exit before it is sent, so main() lets node exit once nothing is pending.
async function signOff(api) {
  await api.destroy();
  step('destroyed', {});
}

// Run the script's body: exit status 0 once it ends and node has nothing left to do (the logout
// destroy() sent is answered); 1 (with a 'failed' step) at once when it throws.
function main(body) {
  body().then(() => { process.exitCode = 0; }, (error) => {
    step('failed', {error: String(error && (error.stack || error))});
    process.exit(1);
  });
}

module.exports = {main, signOff, signOn, step};
