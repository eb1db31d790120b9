'use strict';
// Queries that wait for a reviewer, through the unchanged official Node client.
//
// The demo configuration (demo/sluice.yaml) sends an `agents` query whose
// dry-run estimate is over 10 MiB to group `reviewers` (rule large-scan, one
// approval, 15 minutes). The client only sees a job that stays PENDING and
// keeps polling; reviewers act through /sluice/v1/approvals on the same
// gateway (docs/approvals.md). The timeout and restart cases run on private
// gateways (a shorter timeout; a restart), over the same demo tables.

const {describe, test, before, after, afterEach} = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const {startSluice, makeClient, agentToken, demoConfigText, sluiceApi} = require('../lib/sluice');

const UPSTREAM = process.env.SLUICE_E2E_UPSTREAM || 'embedded';
// In the bqemulator pass the emulator estimates every query at 0 bytes, so
// the demo's rule on bytes never applies; against an external gateway (SLUICE_URL) no reviewer token can be minted.
const SKIP =
  (UPSTREAM === 'bqemulator' && 'against bqemulator: it estimates 0 bytes, so no query is over the rule\'s 10 MiB') ||
  (process.env.SLUICE_URL && 'SLUICE_URL is set: the tests mint reviewer tokens with the gateway\'s development issuer') ||
  false;

// The subject lib/sluice.js's agentToken gives the agents by default.
const AGENT = 'e2e-node-agent';
const EVENTS = 1_000_000;
const MiB = 2 ** 20;
// Reads event_id and duration_ms, two INT64 columns without NULLs: 8 bytes ×
// 1,000,000 rows each, about 15.3 MiB, over the rule's 10 MiB. (Not revenue:
// it is NULL but for purchases, and the estimate counts only its values.)
// Its result is one small row. The other tests add a condition of their own
// so that each approval request is told apart by its SQL.
const BIG = 'SELECT COUNT(*) AS n, SUM(duration_ms) AS d FROM `demo.shop.events` WHERE event_id > 0';
const WAIT_S = 180;

let server;
let bq;
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
  try {
    // Whatever a failed test left waiting: deny it, so no job stays PENDING.
    const {body} = await api(reviewer, 'GET', '/sluice/v1/approvals?state=PENDING');
    for (const approval of body.approvals || []) await denyIfPending(approval.id, 'e2e cleanup (after)');
  } finally {
    await server.stop({keepLog: failures > 0});
    if (failures > 0) console.error(`the gateway's log: ${server.log}`);
  }
}, {timeout: 60_000});

// --- the reviewers' REST API ----------------------------------------------

// On the main gateway, or on `gateway` (a private one).
const api = (token, method, urlPath, body, gateway = server) => sluiceApi(gateway, token, method, urlPath, body);

const vote = (token, id, action, reason, gateway = server) =>
  api(token, 'POST', `/sluice/v1/approvals/${id}:${action}`, {reason}, gateway);

// The pending approval request `match` selects, as the reviewer lists it;
// `rows` (an outcome()) is the client's query, if it may already have ended.
// On a private gateway, `on` gives it and its reviewer's token.
async function pendingApproval(match, what, rows = null, deadlineMs = 60_000, on = {}) {
  const {gateway = server, token = reviewer} = on;
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const {status, body} = await api(token, 'GET', '/sluice/v1/approvals?state=PENDING', undefined, gateway);
    assert.equal(status, 200, JSON.stringify(body));
    assert.ok(Array.isArray(body.approvals), JSON.stringify(body));
    const found = body.approvals.filter(match);
    assert.ok(found.length <= 1, `several pending approvals for ${what}: ${JSON.stringify(found)}`);
    if (found.length === 1) return found[0];
    if (rows && rows.done) {
      const how = rows.ok ? `returned ${JSON.stringify(rows.value[0])}` : `failed: ${rows.error.message}`;
      throw new Error(`${what} never waited for a reviewer: it ${how}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`no pending approval for ${what} within ${deadlineMs / 1000}s: ${JSON.stringify(body)}`);
    }
    await sleep(250);
  }
}

// Cleanup: denies `id` as the reviewer if it is still pending.
async function denyIfPending(id, reason) {
  if (!id || !server) return;
  try {
    const {body} = await api(reviewer, 'GET', `/sluice/v1/approvals/${id}`);
    if (body.state === 'PENDING') await vote(reviewer, id, 'deny', reason);
  } catch (err) {
    console.error(`could not clean up approval ${id}: ${err}`);
  }
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

// A promise's outcome, observed without leaving a rejection unhandled.
function outcome(promise) {
  const state = {done: false};
  state.settled = promise.then(
    value => Object.assign(state, {done: true, ok: true, value}),
    error => Object.assign(state, {done: true, ok: false, error}),
  );
  return state;
}

async function settledWithin(state, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms / 1000}s`)), ms);
  });
  try {
    return await Promise.race([state.settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// --- the tests --------------------------------------------------------------

describe('approvals (rule large-scan of the demo configuration)', {skip: SKIP}, () => {
  test('the official Node client waits through a 3-minute approval and returns the rows', {timeout: 360_000}, async t => {
    // The expected values another way, each query reading at most one
    // 8-byte column (7.6 MiB, under the rule): no review needed.
    const [[total]] = await bq.query('SELECT COUNT(*) AS n FROM `demo.shop.events`');
    assert.equal(total.n, EVENTS);
    const [[kept]] = await bq.query('SELECT COUNTIF(event_id > 0) AS n FROM `demo.shop.events`');
    assert.equal(kept.n, EVENTS, 'the WHERE keeps every row, so SUM(duration_ms) over all rows is the expected d');
    const [[sum]] = await bq.query('SELECT SUM(duration_ms) AS d FROM `demo.shop.events`');
    assert.ok(sum.d > 0);

    const sql = BIG;
    const started = Date.now();
    const rows = outcome(bq.query(sql));
    let approval;
    try {
      approval = await pendingApproval(a => a.sql === sql, sql, rows);
      assert.equal(approval.state, 'PENDING');
      assert.equal(approval.rule, 'large-scan');
      assert.equal(approval.principal, AGENT);
      assert.ok(Number(approval.estimate.bytes) > 10 * MiB, `estimate ${approval.estimate.bytes}`);
      assert.ok(approval.estimate.usd > 0, `usd ${approval.estimate.usd}`);
      assert.deepEqual(approval.votes, []);
      const jobId = approval.jobReference.jobId;
      assert.ok(jobId);

      // The job waits, saying for what.
      const [meta] = await bq.job(jobId).getMetadata();
      assert.equal(meta.status.state, 'PENDING');
      const message = meta.status.message || '';
      assert.match(message, /^waiting for approval by reviewers: /);
      assert.ok(message.includes('rule large-scan') && message.includes(approval.id), message);

      // The client keeps polling, unchanged, for three minutes.
      while (Date.now() - started < WAIT_S * 1000) {
        assert.ok(!rows.done, `the query ended before anyone approved it: ${rows.error || JSON.stringify(rows.value)}`);
        await sleep(Math.min(5000, Math.max(0, WAIT_S * 1000 - (Date.now() - started))));
      }
      assert.ok(!rows.done, 'the query ended before anyone approved it');
      const [still] = await bq.job(jobId).getMetadata();
      assert.equal(still.status.state, 'PENDING');
      const waited = (Date.now() - started) / 1000;

      const {status, body} = await vote(reviewer, approval.id, 'approve', 'expected report');
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(body.state, 'APPROVED');
      assert.equal(body.votes.length, 1);
      assert.equal(body.votes[0].reviewer, 'alice');
      assert.equal(body.votes[0].decision, 'APPROVE');
      assert.equal(body.votes[0].reason, 'expected report');

      const result = await settledWithin(rows, 120_000, 'the approved query');
      assert.ok(result.ok, `the approved query failed: ${result.error && result.error.message}`);
      const [resultRows] = result.value;
      assert.equal(resultRows.length, 1);
      assert.equal(resultRows[0].n, EVENTS);
      assert.deepEqual(resultRows[0], {n: EVENTS, d: sum.d});
      const [done] = await bq.job(jobId).getMetadata();
      assert.equal(done.status.state, 'DONE');
      assert.equal(done.status.errorResult, undefined);
      t.diagnostic(`approved after ${waited.toFixed(1)}s of waiting; rows after ${((Date.now() - started) / 1000).toFixed(1)}s`);
    } finally {
      await denyIfPending(approval && approval.id, 'e2e cleanup');
    }
  });

  test('a denied query fails with the reviewer\'s reason', {timeout: 120_000}, async () => {
    const sql = `${BIG} AND customer_id > 0`;
    const [job] = await bq.createQueryJob({query: sql});
    let approval;
    try {
      approval = await pendingApproval(a => a.jobReference && a.jobReference.jobId === job.id, `job ${job.id}`);
      assert.equal(approval.sql, sql);
      const rows = outcome(job.getQueryResults());
      await sleep(1000);
      assert.ok(!rows.done, 'the query ended before anyone reviewed it');

      const {status, body} = await vote(reviewer, approval.id, 'deny', 'select fewer columns');
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(body.state, 'DENIED');

      const result = await settledWithin(rows, 60_000, 'the denied query');
      assert.ok(!result.ok, `the denied query returned rows: ${JSON.stringify(result.value && result.value[0])}`);
      const err = result.error;
      const reasons = (err.errors || []).map(e => e && e.reason);
      assert.ok(err.code === 403 || reasons.includes('accessDenied'), `code=${err.code} reasons=${reasons}: ${err.message}`);
      assert.ok(err.message.includes('alice denied this query: select fewer columns'), err.message);

      const [meta] = await job.getMetadata();
      assert.equal(meta.status.state, 'DONE');
      assert.equal(meta.status.errorResult.reason, 'accessDenied');
      assert.ok(meta.status.errorResult.message.includes('alice denied this query: select fewer columns'),
        meta.status.errorResult.message);
    } finally {
      await denyIfPending(approval && approval.id, 'e2e cleanup');
    }
  });

  test('the requester cannot approve their own query', {timeout: 120_000}, async () => {
    const sql = `${BIG} AND page IS NOT NULL`;
    const rows = outcome(bq.query(sql));
    let approval;
    try {
      approval = await pendingApproval(a => a.sql === sql, sql, rows);
      // Same subject as the agent, now also a reviewer: still the requester.
      const self = await agentToken(server, {sub: AGENT, groups: ['agents', 'reviewers']});
      const {status, body} = await vote(self, approval.id, 'approve', 'looks fine to me');
      assert.equal(status, 403, JSON.stringify(body));
      assert.ok(body.error && String(body.error.message).includes('approvals.self'), JSON.stringify(body));

      // Not approved: still waiting.
      const {body: again} = await api(reviewer, 'GET', `/sluice/v1/approvals/${approval.id}`);
      assert.equal(again.state, 'PENDING');
      assert.deepEqual(again.votes, []);
      assert.ok(!rows.done, 'the query ended after a refused self-approval');

      const denied = await vote(reviewer, approval.id, 'deny', 'cleaning up');
      assert.equal(denied.status, 200, JSON.stringify(denied.body));
      const result = await settledWithin(rows, 60_000, 'the denied query');
      assert.ok(!result.ok, 'the query returned rows though nobody approved it');
    } finally {
      await denyIfPending(approval && approval.id, 'e2e cleanup');
    }
  });

  test('an edited query, and the same query again, each wait for a new approval', {timeout: 180_000}, async () => {
    const sql = `${BIG} AND event_id > 2`;
    const edited = `${sql} AND duration_ms >= 0`;
    // The expected count another way (one column, under the rule).
    const [[kept]] = await bq.query('SELECT COUNTIF(event_id > 2) AS n FROM `demo.shop.events`');
    assert.ok(kept.n > 0 && kept.n <= EVENTS, JSON.stringify(kept));

    const ids = [];
    try {
      const rows = outcome(bq.query(sql));
      const first = await pendingApproval(a => a.sql === sql, sql, rows);
      ids.push(first.id);
      const approved = await vote(reviewer, first.id, 'approve', 'once');
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      assert.equal(approved.body.state, 'APPROVED');
      const result = await settledWithin(rows, 120_000, 'the approved query');
      assert.ok(result.ok, `the approved query failed: ${result.error && result.error.message}`);
      assert.equal(result.value[0].length, 1);
      assert.equal(result.value[0][0].n, kept.n);

      // A new job for each, each waiting for a request of its own: the
      // approval was for one job, and is used.
      const waiting = [];
      for (const [what, text] of [['the edited query', edited], ['the same query again', sql]]) {
        const [job] = await bq.createQueryJob({query: text});
        assert.notEqual(job.id, first.jobReference.jobId, `${what} reused the approved job`);
        const [meta] = await job.getMetadata();
        assert.equal(meta.status.state, 'PENDING', `${what}: ${JSON.stringify(meta.status)}`);
        assert.match(meta.status.message || '', /^waiting for approval by reviewers: /);
        const approval = await pendingApproval(a => a.jobReference && a.jobReference.jobId === job.id, `${what} (job ${job.id})`);
        ids.push(approval.id);
        assert.equal(approval.sql, text);
        assert.equal(approval.rule, 'large-scan');
        assert.deepEqual(approval.votes, []);
        assert.ok(meta.status.message.includes(approval.id), `${what}: ${meta.status.message}`);
        waiting.push({what, job, approval});
      }
      assert.equal(new Set(ids).size, 3, `not three distinct approval requests: ${ids}`);

      // Still waiting a little later: neither ran under the first approval.
      await sleep(2000);
      for (const {what, job} of waiting) {
        const [meta] = await job.getMetadata();
        assert.equal(meta.status.state, 'PENDING', `${what} ran without a new approval: ${JSON.stringify(meta.status)}`);
      }
      // The used approval takes no more votes.
      const bob = await agentToken(server, {sub: 'bob', groups: ['reviewers']});
      const late = await vote(bob, first.id, 'approve', 'me too');
      assert.equal(late.status, 409, JSON.stringify(late.body));

      for (const {what, job, approval} of waiting) {
        const denied = await vote(reviewer, approval.id, 'deny', 'once was enough');
        assert.equal(denied.status, 200, JSON.stringify(denied.body));
        assert.equal(denied.body.state, 'DENIED');
        const ended = await settledWithin(outcome(job.getQueryResults()), 60_000, what);
        assert.ok(!ended.ok, `${what} returned rows though it was denied`);
        assert.ok(ended.error.message.includes('alice denied this query: once was enough'), ended.error.message);
      }
    } finally {
      for (const id of ids) await denyIfPending(id, 'e2e cleanup');
    }
  });
});

// --- private gateways -------------------------------------------------------

// A gateway on the demo configuration edited by `edit`, over the main
// gateway's demo tables; stopped by the test, or by after() if it cannot.
async function startPrivate(edit = text => text) {
  const gateway = await startSluice({
    configText: edit(demoConfigText()),
    warehouseDir: path.join(server.dataDir, 'warehouse'),
  });
  privateGateways.add(gateway);
  return gateway;
}

async function stopPrivate(gateway) {
  privateGateways.delete(gateway);
  await gateway.stop();
}

// Runs `body(gateway)` on a private gateway, with its log's tail in the
// message of any failure.
async function onPrivateGateway(edit, body) {
  const gateway = await startPrivate(edit);
  try {
    await body(gateway);
  } catch (err) {
    err.message += `\n--- tail of the private gateway's log ---\n${gateway.logTail()}`;
    throw err;
  } finally {
    await stopPrivate(gateway);
  }
}

describe('approvals on a private gateway (a short timeout; a restart)', {skip: SKIP}, () => {
  test('a query nobody approves within the rule\'s timeout is refused', {timeout: 300_000}, async () => {
    const shortTimeout = text => {
      assert.equal(text.split('timeout: 15m').length, 2, 'demo/sluice.yaml changed: not one "timeout: 15m"');
      return `${text.replace('timeout: 15m', 'timeout: 6s')}\napprovals:\n  sweep_interval_ms: 200\n`;
    };
    await onPrivateGateway(shortTimeout, async gateway => {
      const client = await makeClient(gateway, await agentToken(gateway));
      const alice = await agentToken(gateway, {sub: 'alice', groups: ['reviewers']});
      const started = Date.now();
      const rows = outcome(client.query(BIG));
      const approval = await pendingApproval(a => a.sql === BIG, BIG, rows, 30_000, {gateway, token: alice});
      const lasts = Date.parse(approval.expireTime) - Date.parse(approval.createTime);
      assert.ok(lasts >= 5_000 && lasts <= 7_000, `the request expires after ${lasts}ms, not 6 s: ${JSON.stringify(approval)}`);

      const result = await settledWithin(rows, 60_000, 'the query nobody approved');
      const elapsed = (Date.now() - started) / 1000;
      assert.ok(!result.ok, `the query returned rows though nobody approved it: ${JSON.stringify(result.value && result.value[0])}`);
      const err = result.error;
      const reasons = (err.errors || []).map(e => e && e.reason);
      assert.ok(err.code === 403 || reasons.includes('accessDenied'), `code=${err.code} reasons=${reasons}: ${err.message}`);
      assert.ok(err.message.includes('no reviewer (group:reviewers) approved this query within 6 seconds'), err.message);
      assert.ok(elapsed >= 5 && elapsed < 30, `refused after ${elapsed}s, not soon after 6 s`);

      const jobId = approval.jobReference.jobId;
      const [meta] = await client.job(jobId).getMetadata();
      assert.equal(meta.status.state, 'DONE');
      assert.equal(meta.status.errorResult.reason, 'accessDenied');
      const {status, body} = await api(alice, 'GET', '/sluice/v1/approvals?state=EXPIRED', undefined, gateway);
      assert.equal(status, 200, JSON.stringify(body));
      assert.deepEqual(body.approvals.map(a => a.jobReference.jobId), [jobId]);
      // Too late to approve.
      const late = await vote(alice, approval.id, 'approve', 'sorry, late', gateway);
      assert.equal(late.status, 409, JSON.stringify(late.body));
    });
  });

  test('a restart of the gateway while the client waits loses nothing', {timeout: 300_000}, async () => {
    // The expected sum another way, under the rule (same tables).
    const [[sum]] = await bq.query('SELECT SUM(duration_ms) AS d FROM `demo.shop.events`');
    await onPrivateGateway(undefined, async gateway => {
      const client = await makeClient(gateway, await agentToken(gateway));
      const alice = await agentToken(gateway, {sub: 'alice', groups: ['reviewers']});
      const rows = outcome(client.query(BIG));
      const approval = await pendingApproval(a => a.sql === BIG, BIG, rows, 60_000, {gateway, token: alice});
      await sleep(2000);

      const {url, pid} = gateway;
      await gateway.restart();
      assert.equal(gateway.url, url);
      assert.notEqual(gateway.pid, pid, 'the gateway process was not replaced');
      await sleep(2000);
      assert.ok(!rows.done, `the query ended during the restart: ${rows.error ? rows.error.message : JSON.stringify(rows.value)}`);

      // The request survived, still waiting for its vote.
      const {body: again} = await api(alice, 'GET', `/sluice/v1/approvals/${approval.id}`, undefined, gateway);
      assert.equal(again.state, 'PENDING', JSON.stringify(again));
      const {status, body} = await vote(alice, approval.id, 'approve', 'after the restart', gateway);
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(body.state, 'APPROVED');

      const result = await settledWithin(rows, 120_000, 'the query approved after the restart');
      assert.ok(result.ok, `the approved query failed: ${result.error && result.error.message}`);
      assert.deepEqual(result.value[0], [{n: EVENTS, d: sum.d}]);
    });
  });
});
