// The public genesys-workspace-client-js against a drlab GWS node (or a proxy in front of it):
// token, initialize, activate-channels, LoggedIn, ready -> Ready,
// not-ready AfterCallWork -> NotReady, destroy. Prints one JSON line per step; exit 0 on success.
// Usage: node workspace_flow.js BASE_URL USER PASSWORD DN
const WorkspaceApi = require('genesys-workspace-client-js');

const [base, user, password, dn] = process.argv.slice(2);

function step(name, detail) {
  console.log(JSON.stringify({step: name, ...detail}));
}

async function token() {
  const body = new URLSearchParams({grant_type: 'password', username: user, password});
  const response = await fetch(`${base}/auth/v3/oauth/token`, {
    method: 'POST',
    body,
    headers: {Authorization: 'Basic ' + Buffer.from('external_api_client:secret').toString('base64')},
  });
  if (response.status !== 200) throw new Error(`token: HTTP ${response.status}`);
  return (await response.json()).access_token;
}

function dnState(api, predicate, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${what}`)), 10000);
    const listener = (message) => {
      if (predicate(message.dn)) {
        clearTimeout(timer);
        api.removeListener('DnStateChanged', listener);
        resolve(message.dn);
      }
    };
    api.on('DnStateChanged', listener);
  });
}

(async () => {
  const api = new WorkspaceApi('drlab', base, 'false');
  await api.initialize({token: await token()});
  step('initialized', {user: api.user});
  let wanted = dnState(api, (d) => d.agentState === 'LoggedIn', 'LoggedIn');
  await api.activateChannels(user, dn);
  step('dn', await wanted);
  wanted = dnState(api, (d) => d.agentState === 'Ready', 'Ready');
  await api.voice.ready();
  step('dn', await wanted);
  wanted = dnState(
    api, (d) => d.agentState === 'NotReady' && d.agentWorkMode === 'AfterCallWork', 'NotReady');
  await api.voice.notReady('AfterCallWork');
  step('dn', await wanted);
  await api.destroy();
  await new Promise((resolve) => setTimeout(resolve, 500));  // destroy() does not wait in 9.0.1
  step('destroyed', {});
  process.exit(0);
})().catch((error) => {
  step('failed', {error: String(error && (error.stack || error))});
  process.exit(1);
});
