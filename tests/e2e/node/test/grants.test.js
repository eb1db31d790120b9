'use strict';
// Just-in-time grants and budgets, through the unchanged official Node client.
//
// The demo configuration (demo/sluice.yaml) gives group `contractors` no
// table of its own: grant rule shop-access lets a reviewer (group
// `reviewers`) grant one the dataset demo.shop for up to 8 hours. The
// contractor asks through POST /sluice/v1/access-requests, a reviewer votes
// as on a query, and the contractor's same client then reads until the
// grant expires or is revoked. Budgets run on a private gateway whose
// agents may process 20 MiB per CI run (token claim run_id).

const {describe, test, before, after, afterEach} = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const {startSluice, makeClient, agentToken, demoConfigText, sluiceApi} = require('../lib/sluice');

const UPSTREAM = process.env.SLUICE_E2E_UPSTREAM || 'embedded';
// As in approvals.test.js: the private gateway and the demo's own policies
// exist only in the embedded pass, and against an external gateway
// (SLUICE_URL) no contractor or reviewer token can be minted.
const SKIP =
  (UPSTREAM === 'bqemulator' && 'against bqemulator: the grant and budget tests run on the demo configuration\'s own gateway') ||
  (process.env.SLUICE_URL && 'SLUICE_URL is set: the tests mint contractor and reviewer tokens with the gateway\'s development issuer') ||
  false;

const CONTRACTOR = 'e2e-node-contractor';
const ORDERS_ROWS = 100_000;
const ORDERS = 'SELECT COUNT(*) AS n FROM `demo.shop.orders`';
// A few whole rows, to compare the contractor's answer with the agents'.
const SOME_ORDERS =
  'SELECT order_id, customer_id, status, amount FROM `demo.shop.orders` WHERE order_id <= 20 ORDER BY order_id';

let server;
let bq; // an agent's client (policy agents-read-shop)
let reviewer; // alice, group reviewers
const privateGateways = new Set();
let failures = 0; // the main gateway's log is kept when a test failed

before(async () => {
  if (SKIP) return;
  server = await startSluice();
  bq = await makeClient(server);
  reviewer = await agentToken(server, {sub: 'alice', groups: ['reviewers']});
}, {timeout: 240_000});

afterEach(t => {
  if (t.passed === false) failures += 1;
});

after(async () => {
  // Private gateways first: they read the main gateway's warehouse folder.
  for (const gateway of privateGateways) {
    try {
      await gateway.stop();
    } catch (err) {
      console.error(`could not stop a private gateway: ${err}`);
    }
  }
  if (!server) return;
  await server.stop({keepLog: failures > 0});
  if (failures > 0) console.error(`the gateway's log: ${server.log}`);
}, {timeout: 60_000});

const api = (token, method, urlPath, body) => sluiceApi(server, token, method, urlPath, body);
const vote = (id, action, reason) => api(reviewer, 'POST', `/sluice/v1/approvals/${id}:${action}`, {reason});
const sleep = ms => new Promise(r => setTimeout(r, ms));

// The error `promise` (a client call) rejects with, checked to be a
// refusal: HTTP 403 with `reason`, and quickly (not retried).
async function refused(promise, reason, what) {
  const started = Date.now();
  let error = null;
  try {
    const [rows] = await promise;
    error = new Error(`${what} returned rows: ${JSON.stringify(rows && rows.slice(0, 3))}`);
  } catch (err) {
    const reasons = (err.errors || []).map(e => e && e.reason);
    assert.equal(err.code, 403, `${what}: code=${err.code} reasons=${reasons}: ${err.message}`);
    assert.equal(reasons[0], reason, `${what}: reasons=${reasons}: ${err.message}`);
    const elapsed = (Date.now() - started) / 1000;
    assert.ok(elapsed < 30, `${what}: the refusal took ${elapsed}s (retried?)`);
    return err;
  }
  throw error;
}

function grantRefusal(err) {
  assert.ok(err.message.includes('rule grants.shop-access'), err.message);
  assert.ok(err.message.includes('sluice access request --dataset demo.shop'), err.message);
  assert.ok(err.message.includes(CONTRACTOR), err.message);
}

// The grants `token` sees (`state`: ACTIVE by default, or ALL), by id.
async function grantsOf(token, state) {
  const {status, body} = await api(token, 'GET', `/sluice/v1/grants${state ? `?state=${state}` : ''}`);
  assert.equal(status, 200, JSON.stringify(body));
  assert.ok(Array.isArray(body.grants), JSON.stringify(body));
  return new Map(body.grants.map(g => [g.id, g]));
}

async function askForShop(token, duration, justification) {
  const {status, body} = await api(token, 'POST', '/sluice/v1/access-requests', {
    datasets: ['demo.shop'],
    duration,
    justification,
  });
  assert.equal(status, 200, JSON.stringify(body));
  return body;
}

// Cleanup: denies request `id` if still pending, revokes its grant if active.
async function closeRequest(id) {
  if (!id || !server) return;
  try {
    const {body} = await api(reviewer, 'GET', `/sluice/v1/access-requests/${id}`);
    if (body.state === 'PENDING') {
      await api(reviewer, 'POST', `/sluice/v1/access-requests/${id}:deny`, {reason: 'e2e cleanup'});
    }
    const active = await grantsOf(reviewer);
    if (active.has(id)) await api(reviewer, 'POST', `/sluice/v1/grants/${id}:revoke`);
  } catch (err) {
    console.error(`could not clean up access request ${id}: ${err}`);
  }
}

// --- grants -----------------------------------------------------------------

describe('just-in-time grants (rule shop-access of the demo configuration)', {skip: SKIP}, () => {
  test('a contractor reads demo.shop only under a grant a reviewer approved, until it is revoked', {timeout: 180_000}, async () => {
    // What the agents (allowed demo.shop by their policy) read.
    const [[count]] = await bq.query(ORDERS);
    assert.equal(count.n, ORDERS_ROWS);
    const [expectedRows] = await bq.query(SOME_ORDERS);
    assert.equal(expectedRows.length, 20);

    const token = await agentToken(server, {sub: CONTRACTOR, groups: ['contractors']});
    const carol = await makeClient(server, token);
    grantRefusal(await refused(carol.query(ORDERS), 'accessDenied', 'the contractor\'s query without a grant'));

    let id;
    try {
      const request = await askForShop(token, '1h', 'incident 42: reconcile orders');
      id = request.id;
      assert.match(id, /^acc_/);
      assert.equal(request.state, 'PENDING');
      assert.equal(request.kind, 'ACCESS');
      assert.deepEqual(request.datasets, ['demo.shop']);
      assert.equal(request.duration, '3600s');
      assert.equal(request.rule, 'shop-access');
      assert.equal(request.principal, CONTRACTOR);
      assert.equal(request.justification, 'incident 42: reconcile orders');

      // The reviewer sees it waiting.
      const {status: listed, body: pending} = await api(reviewer, 'GET', '/sluice/v1/access-requests?state=PENDING');
      assert.equal(listed, 200, JSON.stringify(pending));
      assert.deepEqual(pending.accessRequests.filter(r => r.id === id).map(r => r.state), ['PENDING'], JSON.stringify(pending));

      // Not by the requester, even one who is also a reviewer.
      const self = await agentToken(server, {sub: CONTRACTOR, groups: ['contractors', 'reviewers']});
      const selfVote = await api(self, 'POST', `/sluice/v1/approvals/${id}:approve`, {reason: 'I need it'});
      assert.equal(selfVote.status, 403, JSON.stringify(selfVote.body));
      assert.ok(String(selfVote.body.error && selfVote.body.error.message).includes('approvals.self'), JSON.stringify(selfVote.body));
      const {body: still} = await api(reviewer, 'GET', `/sluice/v1/access-requests/${id}`);
      assert.equal(still.state, 'PENDING');
      assert.deepEqual(still.votes, []);
      assert.deepEqual([...(await grantsOf(token)).keys()], [], 'a grant exists before any reviewer approved');
      grantRefusal(await refused(carol.query(ORDERS), 'accessDenied', 'the query after a refused self-approval'));

      const approvedAt = Date.now();
      const {status, body} = await api(reviewer, 'POST', `/sluice/v1/access-requests/${id}:approve`, {reason: 'ok for the incident'});
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(body.state, 'APPROVED');
      assert.deepEqual(body.votes.map(v => [v.reviewer, v.decision, v.reason]), [['alice', 'APPROVE', 'ok for the incident']]);

      // The same client, unchanged, now reads the rows the agents read.
      const [[granted]] = await carol.query(ORDERS);
      assert.equal(granted.n, ORDERS_ROWS);
      const [rows] = await carol.query(SOME_ORDERS);
      assert.deepEqual(rows, expectedRows);
      // Only what was granted: another dataset stays refused.
      await refused(carol.query('SELECT 1 AS one FROM `demo.other.things`'), 'accessDenied', 'a dataset outside the grant');

      const active = await grantsOf(token);
      const grant = active.get(id);
      assert.ok(grant, `the grant is not listed: ${JSON.stringify([...active.values()])}`);
      assert.equal(grant.state, 'ACTIVE');
      assert.equal(grant.principal, CONTRACTOR);
      assert.equal(grant.rule, 'shop-access');
      assert.deepEqual(grant.datasets, ['demo.shop']);
      assert.equal(grant.approvedBy, 'alice');
      const lasts = Date.parse(grant.expireTime) - approvedAt;
      assert.ok(lasts > 3590_000 && lasts < 3660_000, `the grant lasts ${lasts / 1000}s, not an hour: ${JSON.stringify(grant)}`);
      assert.ok((await grantsOf(reviewer)).has(id), 'the reviewer does not see the grant');

      // The holder revokes it: the next query is refused again.
      const revoke = await api(token, 'POST', `/sluice/v1/grants/${id}:revoke`);
      assert.equal(revoke.status, 200, JSON.stringify(revoke.body));
      assert.equal(revoke.body.state, 'REVOKED');
      assert.equal(revoke.body.revokedBy, CONTRACTOR);
      grantRefusal(await refused(carol.query(ORDERS), 'accessDenied', 'the contractor\'s query after the revocation'));
      assert.ok(!(await grantsOf(token)).has(id), 'a revoked grant is still listed as active');
      const ended = (await grantsOf(token, 'ALL')).get(id);
      assert.equal(ended && ended.state, 'REVOKED', JSON.stringify(ended));
    } finally {
      await closeRequest(id);
    }
  });

  test('a grant ends on time', {timeout: 120_000}, async () => {
    const token = await agentToken(server, {sub: CONTRACTOR, groups: ['contractors']});
    const carol = await makeClient(server, token);
    let id;
    try {
      const request = await askForShop(token, '5s', 'a quick look');
      id = request.id;
      assert.equal(request.duration, '5s');
      const {status, body} = await vote(id, 'approve', 'five seconds then');
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(body.state, 'APPROVED');

      const grant = (await grantsOf(token)).get(id);
      assert.ok(grant, 'the approved grant is not listed');
      assert.equal(grant.state, 'ACTIVE');
      const expires = Date.parse(grant.expireTime);
      const lasts = expires - Date.parse(grant.startTime);
      assert.ok(lasts >= 4_500 && lasts <= 5_500, `the grant lasts ${lasts}ms, not 5 s: ${JSON.stringify(grant)}`);

      const [[granted]] = await carol.query(ORDERS);
      assert.ok(Date.now() < expires, 'the query under the grant ended after the grant: lengthen the grant');
      assert.equal(granted.n, ORDERS_ROWS);

      await sleep(Math.max(0, expires - Date.now()) + 1_000);
      grantRefusal(await refused(carol.query(ORDERS), 'accessDenied', 'the query after the grant expired'));
      assert.ok(!(await grantsOf(token)).has(id), 'an expired grant is still listed as active');
      const ended = (await grantsOf(token, 'ALL')).get(id);
      assert.equal(ended && ended.state, 'EXPIRED', JSON.stringify(ended));
    } finally {
      await closeRequest(id);
    }
  });
});

// --- budgets ----------------------------------------------------------------

const BUDGET = `    budgets:
      - name: per-run
        per: [run_id]
        bytes: 20MiB
        period: none
`;
// One INT64 column of the million events: about 7.6 MiB estimated, under
// the demo's 10 MiB review rule; two fit in 20 MiB, a third does not.
const ONE_COLUMN = 'SELECT SUM(duration_ms) AS d FROM `demo.shop.events`';
const MiB = 2 ** 20;

function withBudget(text) {
  const anchor = '      max_rows: 1000000        # results with more rows are refused\n';
  assert.ok(text.includes(anchor), 'demo/sluice.yaml changed: the agents policy\'s max_rows line is not there');
  return text.replace(anchor, anchor + BUDGET);
}

describe('budgets (a private gateway: 20 MiB per CI run)', {skip: SKIP}, () => {
  test('a CI run over its budget is refused with quotaExceeded; another run has its own', {timeout: 300_000}, async () => {
    const gateway = await startSluice({
      configText: withBudget(demoConfigText()),
      warehouseDir: path.join(server.dataDir, 'warehouse'),
    });
    privateGateways.add(gateway);
    try {
      const runToken = runId =>
        agentToken(gateway, {sub: 'e2e-node-ci', groups: ['agents'], claims: {run_id: runId, repository: 'acme/etl'}});
      const run7 = await makeClient(gateway, await runToken('7'));

      // The estimate the budget weighs: under the review rule, over 20 MiB / 3.
      const [dry] = await run7.createQueryJob({query: ONE_COLUMN, dryRun: true});
      const estimate = Number(dry.metadata.statistics.totalBytesProcessed);
      assert.ok(estimate > (20 * MiB) / 3 && estimate <= 10 * MiB, `estimate ${estimate}`);

      const [[first]] = await run7.query(ONE_COLUMN);
      assert.ok(first.d > 0, JSON.stringify(first));
      const [[second]] = await run7.query(`${ONE_COLUMN} WHERE duration_ms >= 0`);
      assert.equal(second.d, first.d);

      const err = await refused(run7.query(ONE_COLUMN), 'quotaExceeded', 'the third query of run 7');
      assert.ok(err.message.includes('budget per-run'), err.message);
      assert.ok(err.message.includes('this CI run (run_id)'), err.message);
      assert.ok(err.message.includes('does not reset'), err.message);
      // And it stays refused: the refusal spent nothing, and nothing refills it.
      await refused(run7.query(`${ONE_COLUMN} WHERE duration_ms > 0`), 'quotaExceeded', 'run 7 again');

      // Another run of the same pipeline has a budget of its own.
      const run8 = await makeClient(gateway, await runToken('8'));
      const [[other]] = await run8.query(ONE_COLUMN);
      assert.equal(other.d, first.d);
    } catch (err) {
      err.message += `\n--- tail of the private gateway's log ---\n${gateway.logTail()}`;
      throw err;
    } finally {
      await gateway.stop();
      privateGateways.delete(gateway);
    }
  });
});
