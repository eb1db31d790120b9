'use strict';
// The reviewer web UI (/ui/) in a real headless Chromium, with the official
// Node client waiting on the other side.
//
// The demo configuration turns the UI on with the development issuer's
// sign-in, and sends an `agents` query estimated over 10 MiB to group
// `reviewers` (rule large-scan). The browser signs in as alice/reviewers on
// the development issuer's page, finds the request in the pending list,
// opens it, gives a reason and approves; the client's query returns its rows.
// The requester, signed in through the UI, cannot approve its own request.
//
// Chromium: /usr/bin/chromium (Debian's package; tests/e2e/run.sh installs
// it), or SLUICE_CHROMIUM. Missing, the test fails: it is never skipped for
// want of a browser. SLUICE_UI_SCREENSHOTS=DIR saves ui-pending.png and
// ui-request.png there (and ui-session.png).
//
// An auditor (group admins, audit.readers in the demo) opens the Sessions
// page, finds a CI run's session and sees its timeline: the SQL, the
// guardrail's refusal, and the rows exactly as the agent received them —
// masked; the raw values an exempt administrator read never appear. A
// reviewer who is not an auditor sees no Sessions link and is refused.

const {describe, test, before, after} = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const {chromium} = require('playwright-core');
const {startSluice, makeClient, agentToken} = require('../lib/sluice');

const UPSTREAM = process.env.SLUICE_E2E_UPSTREAM || 'embedded';
const SKIP =
  (UPSTREAM === 'bqemulator' && 'against bqemulator: it estimates 0 bytes, so no query is over the rule\'s 10 MiB') ||
  (process.env.SLUICE_URL && 'SLUICE_URL is set: the UI is signed in to through the gateway\'s development issuer') ||
  false;

const CHROMIUM = process.env.SLUICE_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const SCREENSHOTS = process.env.SLUICE_UI_SCREENSHOTS || '';
const AGENT = 'e2e-node-agent';
const EVENTS = 1_000_000;
// Over the rule's 10 MiB (two INT64 columns of a million rows); each test
// tells its request apart by the comment.
const BIG = 'SELECT COUNT(*) AS n, SUM(duration_ms) AS d FROM `demo.shop.events` WHERE event_id > 0';

let server;
let bq;
let reviewer; // alice's bearer token, for checks and cleanup over REST
const profiles = [];

before(async () => {
  if (SKIP) return;
  assert.ok(
    fs.existsSync(CHROMIUM),
    `${CHROMIUM} is missing: install Debian's chromium package (tests/e2e/run.sh does) or set SLUICE_CHROMIUM`,
  );
  server = await startSluice();
  bq = await makeClient(server);
  reviewer = await agentToken(server, {sub: 'alice', groups: ['reviewers']});
}, {timeout: 240_000});

after(async () => {
  for (const dir of profiles) fs.rmSync(dir, {recursive: true, force: true});
  if (!server) return;
  try {
    const {body} = await api('GET', '/sluice/v1/approvals?state=PENDING');
    for (const approval of body.approvals || []) await denyIfPending(approval.id, 'e2e cleanup (after)');
  } finally {
    await server.stop();
  }
}, {timeout: 60_000});

async function api(method, urlPath, body) {
  const res = await fetch(`${server.url}${urlPath}`, {
    method,
    headers: {Authorization: `Bearer ${reviewer}`, 'Content-Type': 'application/json'},
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  return {status: res.status, body: await res.json()};
}

async function denyIfPending(id, reason) {
  if (!id || !server) return;
  try {
    const {body} = await api('GET', `/sluice/v1/approvals/${id}`);
    if (body.state === 'PENDING') await api('POST', `/sluice/v1/approvals/${id}:deny`, {reason});
  } catch (err) {
    console.error(`could not clean up approval ${id}: ${err}`);
  }
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

function outcome(promise) {
  const state = {done: false};
  state.settled = promise.then(
    value => Object.assign(state, {done: true, ok: true, value}),
    error => Object.assign(state, {done: true, ok: false, error}),
  );
  return state;
}

// The pending request for `sql`, as alice lists it over REST.
async function pendingFor(sql, rows) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const {status, body} = await api('GET', '/sluice/v1/approvals?state=PENDING');
    assert.equal(status, 200, JSON.stringify(body));
    const found = (body.approvals || []).filter(a => a.sql === sql);
    if (found.length === 1) return found[0];
    if (rows.done) throw new Error(`the query never waited for a reviewer: ${rows.error || JSON.stringify(rows.value)}`);
    if (Date.now() > deadline) throw new Error(`no pending approval for ${sql}`);
    await sleep(250);
  }
}

// A fresh headless Chromium with its own profile.
async function browser() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-ui-chromium-'));
  profiles.push(profile);
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: {width: 1280, height: 860},
  });
}

// Signs in through the development issuer's page as `subject` in `groups`;
// the page ends on the pending list.
async function signIn(page, subject, groups) {
  await page.goto(`${server.url}/ui/`);
  await page.getByRole('link', {name: 'Sign in'}).click();
  await page.waitForURL(/\/sluice-dev-issuer\/authorize\?/);
  assert.ok(await page.getByText('Development issuer — demo users only').isVisible());
  await page.fill('#subject', subject);
  await page.fill('#groups', groups);
  await page.getByRole('button', {name: 'Sign in as this demo user'}).click();
  await page.waitForURL(`${server.url}/ui/`);
  assert.match(await page.locator('header .who').innerText(), new RegExp(`Signed in as ${subject}`));
}

describe('the reviewer web UI in headless Chromium', {skip: SKIP}, () => {
  test('a reviewer signs in, approves in the UI, and the waiting client returns its rows', {timeout: 300_000}, async () => {
    const [[sum]] = await bq.query('SELECT SUM(duration_ms) AS d FROM `demo.shop.events`');
    const sql = `${BIG} -- approved in the web UI`;
    const rows = outcome(bq.query(sql));
    let approval;
    const context = await browser();
    try {
      approval = await pendingFor(sql, rows);
      const page = await context.newPage();
      await signIn(page, 'alice', 'reviewers');

      const row = page.locator('tr', {has: page.locator(`a[href="/ui/approvals/${approval.id}"]`)});
      assert.equal(await row.count(), 1, await page.content());
      const cells = await row.locator('td').allInnerTexts();
      assert.match(cells[1], /large-scan/);
      assert.match(cells[2], new RegExp(AGENT));
      assert.match(cells[4], /MiB.*bytes.*\$/s);
      if (SCREENSHOTS) {
        fs.mkdirSync(SCREENSHOTS, {recursive: true});
        await page.screenshot({path: path.join(SCREENSHOTS, 'ui-pending.png')});
      }

      await row.locator('a').first().click();
      await page.waitForURL(`${server.url}/ui/approvals/${approval.id}`);
      const shownSql = await page.locator('pre.sql').innerText();
      assert.equal(shownSql.trim(), sql);
      assert.ok(await page.locator('pre.sql .k', {hasText: 'SELECT'}).count() > 0, 'keywords are highlighted');
      const facts = await page.locator('dl.facts').first().innerText();
      assert.match(facts, /large-scan/);
      assert.match(facts, /group:reviewers/);
      await page.fill('#reason', 'expected monthly report');
      if (SCREENSHOTS) await page.screenshot({path: path.join(SCREENSHOTS, 'ui-request.png'), fullPage: true});

      await page.getByRole('button', {name: 'Approve'}).click();
      await page.waitForURL(/voted=approve/);
      assert.ok(await page.getByText('Your approval was recorded.').isVisible());
      assert.equal(await page.locator('h1 .badge').innerText(), 'APPROVED');
      const votes = await page.locator('table').last().innerText();
      assert.match(votes, /alice\s+APPROVE\s+expected monthly report/);

      // The official client, polling all along, gets its rows.
      const result = await Promise.race([
        rows.settled,
        sleep(120_000).then(() => ({done: false})),
      ]);
      assert.ok(result.done, 'the approved query did not return within 2 minutes');
      assert.ok(result.ok, `the approved query failed: ${result.error && result.error.message}`);
      assert.deepEqual(result.value[0], [{n: EVENTS, d: sum.d}]);

      const {body} = await api('GET', `/sluice/v1/approvals/${approval.id}`);
      assert.equal(body.state, 'APPROVED');
      assert.equal(body.votes[0].reviewer, 'alice');
      assert.equal(body.votes[0].reason, 'expected monthly report');

      await page.getByRole('link', {name: 'History'}).click();
      assert.ok(await page.locator(`a[href="/ui/approvals/${approval.id}"]`).count() === 1);
    } finally {
      await context.close();
      await denyIfPending(approval && approval.id, 'e2e cleanup');
    }
  });

  test('the requester cannot approve its own request through the UI', {timeout: 300_000}, async () => {
    const sql = `${BIG} -- the requester tries to approve it`;
    const rows = outcome(bq.query(sql));
    let approval;
    const context = await browser();
    try {
      approval = await pendingFor(sql, rows);
      const page = await context.newPage();
      // The agent's own subject, claiming the reviewers group too.
      await signIn(page, AGENT, 'agents,reviewers');
      await page.goto(`${server.url}/ui/approvals/${approval.id}`);
      await page.fill('#reason', 'my own query is fine');
      await page.getByRole('button', {name: 'Approve'}).click();
      const alert = page.locator('.error[role=alert]');
      await alert.waitFor();
      assert.match(await alert.innerText(), /Your vote was not recorded: .*approvals\.self/);
      assert.equal(await page.locator('h1 .badge').innerText(), 'PENDING');
      assert.equal(await page.inputValue('#reason'), 'my own query is fine', 'the typed reason is kept');

      const {body} = await api('GET', `/sluice/v1/approvals/${approval.id}`);
      assert.equal(body.state, 'PENDING');
      assert.deepEqual(body.votes, []);
      assert.ok(!rows.done, 'the query is still waiting');
    } finally {
      await context.close();
      await denyIfPending(approval && approval.id, 'e2e cleanup');
      if (rows) await rows.settled;
    }
  });

  test('an auditor replays a CI run\'s session in the UI and sees only the masked rows the agent saw', {timeout: 300_000}, async () => {
    const customers = '`demo.shop.customers`';
    const runId = `ui-${Date.now()}`;
    const agent = await makeClient(server, await agentToken(server, {
      sub: 'e2e-node-ui-ci', groups: ['agents'], claims: {run_id: runId, repository: 'acme/etl'},
    }));
    const admin = await makeClient(server, await agentToken(server, {sub: 'e2e-node-ui-admin', groups: ['admins']}));
    const [raw] = await admin.query(`SELECT ssn, email FROM ${customers} ORDER BY customer_id LIMIT 3`);
    const sql = `SELECT customer_id, ssn, email FROM ${customers} ORDER BY customer_id LIMIT 3`;
    const [seen] = await agent.query(sql);
    assert.notDeepEqual(seen.map(r => r.ssn), raw.map(r => r.ssn), 'the agent\'s rows are masked');
    await assert.rejects(agent.query(`DROP TABLE ${customers}`), /guardrails\.deny\.drop/);

    const context = await browser();
    try {
      // A reviewer who is not an auditor: no link, and the page refuses.
      const reviewerPage = await context.newPage();
      await signIn(reviewerPage, 'alice', 'reviewers');
      assert.equal(await reviewerPage.getByRole('link', {name: 'Sessions'}).count(), 0);
      const refused = await reviewerPage.goto(`${server.url}/ui/sessions`);
      assert.equal(refused.status(), 403);
      assert.match(await reviewerPage.locator('.error').innerText(), /audit\.readers/);
      await reviewerPage.getByRole('button', {name: 'Sign out'}).click();

      const page = await context.newPage();
      await signIn(page, 'carol', 'admins');
      await page.getByRole('link', {name: 'Sessions'}).click();
      await page.waitForURL(`${server.url}/ui/sessions`);
      const row = page.locator('table.sessions tbody tr', {hasText: 'e2e-node-ui-ci'});
      assert.equal(await row.count(), 1, await page.content());
      const cells = await row.locator('td').allInnerTexts();
      assert.match(cells[0], /^run-[0-9a-f]{16}$/);
      assert.ok(Number(cells[5]) >= 1 && Number(cells[6]) >= 1, `queries and refusals counted: ${cells}`);
      await row.locator('a').click();
      await page.waitForURL(/\/ui\/sessions\/run-[0-9a-f]{16}$/);

      const facts = await page.locator('dl.facts').innerText();
      assert.match(facts, new RegExp(`run_id=${runId}`));
      assert.match(facts, /acme\/etl/);
      const timeline = await page.locator('main').innerText();
      assert.match(timeline, /auth\.success/);
      assert.match(timeline, /query\.started/);
      assert.match(timeline, /guardrails\.deny\.drop/);
      assert.ok(await page.locator('section.event pre.sql', {hasText: 'SELECT customer_id, ssn, email'}).count() > 0);
      // The rows as the agent received them, and never the raw values.
      const shown = await page.locator('table.rows').allInnerTexts();
      assert.ok(shown.length > 0, 'a page of rows is shown');
      const text = shown.join('\n');
      for (const r of seen) {
        assert.ok(text.includes(String(r.ssn)) && text.includes(r.email), `${JSON.stringify(r)} in ${text}`);
      }
      const html = await page.content();
      for (const r of raw) {
        assert.ok(!html.includes(r.ssn) && !html.includes(r.email), `raw value ${r.ssn} shown`);
      }
      if (SCREENSHOTS) await page.screenshot({path: path.join(SCREENSHOTS, 'ui-session.png'), fullPage: true});
    } finally {
      await context.close();
    }
  });
});
