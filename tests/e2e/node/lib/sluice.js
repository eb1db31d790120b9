'use strict';
// Starts (or reuses) a sluice gateway for the Node end-to-end tests and builds
// an official BigQuery client pointed at it.
//
// Environment:
//   SLUICE_URL  base URL of a running gateway to reuse (optional)
//   SLUICE_BIN  path to the sluice binary (required unless SLUICE_URL is set)
//   SLUICE_CONFIG  optional: a configuration for `sluice serve --config`
//
// startSluice({configText, warehouseDir}) starts a private gateway instead:
// on `configText` (e.g. an edited demoConfigText()), with a data folder of
// its own, reading the embedded warehouse's tables from `warehouseDir` (the
// `<dataDir>/warehouse` of a gateway already running) so the demo data is
// not generated again. Its stop() removes its whole temporary folder, and
// restart() stops the process and starts it again on the same port and
// data folder.

const {spawn, execFileSync} = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const {BigQuery} = require('@google-cloud/bigquery');
const {OAuth2Client} = require('google-auth-library');

const PROJECT = 'demo';
const DEMO_CONFIG = path.resolve(__dirname, '..', '..', '..', '..', 'demo', 'sluice.yaml');
const STARTUP_TIMEOUT_MS = 180_000;
const LISTEN_RE = /http:\/\/127\.0\.0\.1:(\d+)/;

// The one place where the tests obtain the bearer token an agent presents:
// the development issuer of the gateway under test signs it (`sluice token`),
// for subject `sub` in `groups`. Against an external gateway (SLUICE_URL),
// SLUICE_TOKEN is the token.
// `claims` adds extra claims (`{run_id: '42'}`), as a CI run's token has.
async function agentToken(server, {sub = 'e2e-node-agent', groups = ['agents'], claims = {}} = {}) {
  if (!server.dataDir) {
    if (!process.env.SLUICE_TOKEN) throw new Error('SLUICE_URL is set: set SLUICE_TOKEN too');
    return process.env.SLUICE_TOKEN;
  }
  // In the upstream pass the agents' tokens come from their own identity
  // provider (Sluice refuses its development issuer in front of BigQuery).
  const idp = process.env.SLUICE_CONFIG && path.join(path.dirname(process.env.SLUICE_CONFIG), 'agents-idp');
  const signer = idp && fs.existsSync(idp) ? idp : server.dataDir;
  const args = ['token', '--sub', sub, '--data-dir', signer, '--ttl', '1h'];
  for (const group of groups) args.push('--group', group);
  for (const [key, value] of Object.entries(claims)) args.push('--claim', `${key}=${value}`);
  return execFileSync(process.env.SLUICE_BIN, args, {encoding: 'utf8'}).trim();
}

function logTail(file, lines = 60) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `<could not read ${file}: ${err.message}>`;
  }
}

async function waitHealthy(baseUrl, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${baseUrl}/healthz`, {signal: AbortSignal.timeout(5000)});
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise(r => setTimeout(r, 200));
  }
  throw new Error(`GET ${baseUrl}/healthz never answered 200 (last: ${last})`);
}

// The demo configuration's text, to edit for a private gateway.
function demoConfigText() {
  return fs.readFileSync(DEMO_CONFIG, 'utf8');
}

// `text` with its top-level data_dir set to `dataDir` and, when given, the
// embedded warehouse's tables read from `warehouseDir`.
function placeConfig(text, dataDir, warehouseDir) {
  const dataLine = `data_dir: ${JSON.stringify(dataDir)}`;
  text = /^data_dir:.*$/m.test(text) ? text.replace(/^data_dir:.*$/m, dataLine) : `${dataLine}\n${text}`;
  if (warehouseDir) {
    if (!/^warehouse:[ \t]*(#.*)?\n/m.test(text)) throw new Error('the configuration has no warehouse: block to point at the warehouse folder');
    if (/^warehouse:[^\n]*\n(?:[ \t]+[^\n]*\n|[ \t]*\n)*?[ \t]+data_dir:/m.test(text)) {
      throw new Error('the configuration already sets warehouse.data_dir');
    }
    text = text.replace(/^(warehouse:[^\n]*\n)/m, `$1  data_dir: ${JSON.stringify(warehouseDir)}\n`);
  }
  return text;
}

async function startSluice({configText, warehouseDir} = {}) {
  if (process.env.SLUICE_URL && configText === undefined) {
    const url = process.env.SLUICE_URL.replace(/\/+$/, '');
    await waitHealthy(url, 30_000);
    return {url, log: null, dataDir: null, stop: async () => {}, logTail: () => '<external server: no log>'};
  }
  const bin = process.env.SLUICE_BIN;
  if (!bin) {
    throw new Error('SLUICE_BIN is not set: point it at the sluice binary, or set SLUICE_URL to a running gateway');
  }
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(`SLUICE_BIN=${bin} does not exist or is not executable`);
  }

  const privateGateway = configText !== undefined;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), privateGateway ? 'sluice-e2e-node-private-' : 'sluice-e2e-node-'));
  const dataDir = path.join(workDir, 'data');
  fs.mkdirSync(dataDir);
  const logFile = path.join(workDir, 'sluice.log');
  const logFd = fs.openSync(logFile, 'a');
  const baseArgs = ['serve'];
  if (privateGateway) {
    // Not --data-dir: it would move the warehouse folder too.
    const config = path.join(workDir, 'sluice.yaml');
    try {
      fs.writeFileSync(config, placeConfig(configText, dataDir, warehouseDir));
    } catch (err) {
      fs.closeSync(logFd);
      fs.rmSync(workDir, {recursive: true, force: true});
      throw err;
    }
    baseArgs.push('--config', config);
  } else {
    baseArgs.push('--data-dir', dataDir);
    // The BigQuery upstream pass: run.sh starts bqemulator and the token
    // service (upstream_stack.py) and passes the configuration that uses them.
    if (process.env.SLUICE_CONFIG) {
      baseArgs.push('--config', process.env.SLUICE_CONFIG);
      // The token service trusts only the Sluice keys exported beside the
      // configuration: export this gateway's (made now, in its new store).
      const trusted = path.join(path.dirname(process.env.SLUICE_CONFIG), 'trusted-jwks');
      if (fs.existsSync(trusted)) {
        execFileSync(bin, ['secrets', 'jwks', '--config', process.env.SLUICE_CONFIG, '--data-dir', dataDir,
          '--out', path.join(trusted, `${path.basename(workDir)}.json`)], {stdio: 'ignore'});
      }
    }
  }

  // The process running now; restart() replaces it.
  let current = null;
  let removed = false;

  // The data folder goes (the demo warehouse is large); the log stays for
  // post-mortems when `keepLog` (by default, for the main gateway only).
  const removeFiles = keepLog => {
    if (removed) return;
    removed = true;
    try {
      fs.closeSync(logFd);
    } catch {
      // already closed
    }
    fs.rmSync(keepLog ? dataDir : workDir, {recursive: true, force: true});
  };

  // Stops the running process (SIGTERM, then SIGKILL after 10 s).
  const halt = async () => {
    const proc = current;
    if (!proc || proc.exited) return;
    proc.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!proc.exited) proc.child.kill('SIGKILL');
    }, 10_000);
    await proc.exitPromise;
    clearTimeout(timer);
  };

  // Stops the gateway and removes its files; `keepLog` keeps its log (the
  // default for the main gateway, not for a private one).
  const stop = async ({keepLog = !privateGateway} = {}) => {
    try {
      await halt();
    } finally {
      removeFiles(keepLog);
    }
  };

  // Starts `sluice serve` listening on `listen`; resolves to its port.
  const launch = async listen => {
    const child = spawn(bin, [...baseArgs, '--listen', listen], {
      cwd: workDir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc = {child, exited: null};
    proc.exitPromise = new Promise(resolve => {
      child.on('exit', (code, signal) => {
        proc.exited = {code, signal};
        resolve();
      });
    });
    current = proc;

    let stdoutText = '';
    const port = await new Promise((resolve, reject) => {
      let done = false;
      const finish = (err, value) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(value);
      };
      const timer = setTimeout(
        () => finish(new Error(`sluice printed no listening line within ${STARTUP_TIMEOUT_MS / 1000}s`)),
        STARTUP_TIMEOUT_MS,
      );
      child.stdout.on('data', chunk => {
        if (!removed) fs.writeSync(logFd, chunk);
        if (done) return;
        stdoutText += chunk.toString('utf8');
        const m = LISTEN_RE.exec(stdoutText);
        if (m) finish(null, Number(m[1]));
      });
      child.stderr.on('data', chunk => {
        if (!removed) fs.writeSync(logFd, chunk);
      });
      child.on('error', err => finish(err));
      child.on('exit', (code, signal) =>
        finish(new Error(`sluice exited (code ${code}, signal ${signal}) before listening`)),
      );
    });
    await waitHealthy(`http://127.0.0.1:${port}`, 30_000);
    // The data handlers above keep draining output, so the child never blocks on a full pipe.
    return port;
  };

  const failed = async err => {
    const tail = logTail(logFile);
    await stop();
    return new Error(`${err.message}\n--- tail of ${logFile} ---\n${tail}`);
  };

  let port;
  try {
    port = await launch('127.0.0.1:0');
  } catch (err) {
    throw await failed(err);
  }

  const server = {
    url: `http://127.0.0.1:${port}`,
    port,
    log: logFile,
    dataDir,
    workDir,
    stop,
    logTail: () => logTail(logFile),
    // The id of the process serving now (restart() changes it).
    get pid() {
      return current ? current.child.pid : null;
    },
    // Stops the process and starts it again on the same port, with the same
    // configuration and data folder.
    restart: async () => {
      await halt();
      try {
        await launch(`127.0.0.1:${port}`);
      } catch (err) {
        throw await failed(err);
      }
    },
  };
  return server;
}

// A call to Sluice's own REST API (/sluice/v1/...) on `server` as `token`:
// the HTTP status and the parsed JSON body (`{raw}` when it is not JSON).
async function sluiceApi(server, token, method, urlPath, body) {
  const res = await fetch(`${server.url}${urlPath}`, {
    method,
    headers: {Authorization: `Bearer ${token}`, 'Content-Type': 'application/json'},
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = {raw: text};
  }
  return {status: res.status, body: json};
}

// An official client for `server`, presenting `token` (default: an agent's).
async function makeClient(server, token) {
  const authClient = new OAuth2Client();
  authClient.setCredentials({access_token: token ?? (await agentToken(server))});
  return new BigQuery({projectId: PROJECT, apiEndpoint: server.url, authClient});
}

module.exports = {PROJECT, DEMO_CONFIG, agentToken, demoConfigText, startSluice, makeClient, sluiceApi};
