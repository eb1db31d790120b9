'use strict';
// Starts (or reuses) a sluice gateway for the Node end-to-end tests and builds
// an official BigQuery client pointed at it.
//
// Environment:
//   SLUICE_URL  base URL of a running gateway to reuse (optional)
//   SLUICE_BIN  path to the sluice binary (required unless SLUICE_URL is set)
//   SLUICE_CONFIG  optional: a configuration for `sluice serve --config`

const {spawn, execFileSync} = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const {BigQuery} = require('@google-cloud/bigquery');
const {OAuth2Client} = require('google-auth-library');

const PROJECT = 'demo';
const STARTUP_TIMEOUT_MS = 180_000;
const LISTEN_RE = /http:\/\/127\.0\.0\.1:(\d+)/;

// The one place where the tests obtain the bearer token an agent presents:
// the development issuer of the gateway under test signs it (`sluice token`),
// for subject `sub` in `groups`. Against an external gateway (SLUICE_URL),
// SLUICE_TOKEN is the token.
async function agentToken(server, {sub = 'e2e-node-agent', groups = ['agents']} = {}) {
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

async function startSluice() {
  if (process.env.SLUICE_URL) {
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

  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-node-'));
  const dataDir = path.join(workDir, 'data');
  fs.mkdirSync(dataDir);
  const logFile = path.join(workDir, 'sluice.log');
  const logFd = fs.openSync(logFile, 'a');
  const args = ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir];
  // The BigQuery upstream pass: run.sh starts bqemulator and the token
  // service (upstream_stack.py) and passes the configuration that uses them.
  if (process.env.SLUICE_CONFIG) {
    args.push('--config', process.env.SLUICE_CONFIG);
    // The token service trusts only the Sluice keys exported beside the
    // configuration: export this gateway's (made now, in its new store).
    const trusted = path.join(path.dirname(process.env.SLUICE_CONFIG), 'trusted-jwks');
    if (fs.existsSync(trusted)) {
      execFileSync(bin, ['secrets', 'jwks', '--config', process.env.SLUICE_CONFIG, '--data-dir', dataDir,
        '--out', path.join(trusted, `${path.basename(workDir)}.json`)], {stdio: 'ignore'});
    }
  }
  const child = spawn(bin, args, {
    cwd: workDir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  let exited = null;
  const exitPromise = new Promise(resolve => {
    child.on('exit', (code, signal) => {
      exited = {code, signal};
      resolve();
    });
  });
  const stop = async () => {
    if (exited) {
      fs.rmSync(dataDir, {recursive: true, force: true});
      return;
    }
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!exited) child.kill('SIGKILL');
    }, 10_000);
    await exitPromise;
    clearTimeout(timer);
    // the demo warehouse is large; the log stays for post-mortems
    fs.rmSync(dataDir, {recursive: true, force: true});
  };

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
      fs.writeSync(logFd, chunk);
      if (done) return;
      stdoutText += chunk.toString('utf8');
      const m = LISTEN_RE.exec(stdoutText);
      if (m) finish(null, Number(m[1]));
    });
    child.stderr.on('data', chunk => fs.writeSync(logFd, chunk));
    child.on('error', err => finish(err));
    child.on('exit', (code, signal) =>
      finish(new Error(`sluice exited (code ${code}, signal ${signal}) before listening`)),
    );
  }).catch(async err => {
    await stop();
    throw new Error(`${err.message}\n--- tail of ${logFile} ---\n${logTail(logFile)}`);
  });

  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url, 30_000);
  } catch (err) {
    await stop();
    throw new Error(`${err.message}\n--- tail of ${logFile} ---\n${logTail(logFile)}`);
  }
  // The data handlers above keep draining output, so the child never blocks on a full pipe.
  return {url, log: logFile, dataDir, stop, logTail: () => logTail(logFile)};
}

// An official client for `server`, presenting `token` (default: an agent's).
async function makeClient(server, token) {
  const authClient = new OAuth2Client();
  authClient.setCredentials({access_token: token ?? (await agentToken(server))});
  return new BigQuery({projectId: PROJECT, apiEndpoint: server.url, authClient});
}

module.exports = {PROJECT, agentToken, startSluice, makeClient};
