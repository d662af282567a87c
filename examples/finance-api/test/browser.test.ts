import { chromium } from 'playwright-core'
import t from 'tap'
import { loadConfig } from '../src/config.js'
import { start } from '../src/server.js'
import { Client } from './helpers.js'

/** Debian's Chromium (.ci/needs installs it); playwright's own browser downloads are not used. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

t.test('the dashboard logs in, adds a transaction and shows the summary change', async (t) => {
  const running = await start(loadConfig({ PORT: '0', LOG_LEVEL: 'silent', MARKET_LATENCY_MS: '0', INSIGHTS_COST_MS: '50' }))
  t.teardown(() => running.close())
  const setup = new Client(running.url)
  t.equal((await setup.signup('browser@example.com', 'browser password', 'Browser User')).status, 201)
  const accountId = (await setup.get('/api/accounts')).body.items[0].id
  t.equal((await setup.post('/api/transactions', { accountId, amountCents: 100000, category: 'salary' })).status, 201)

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 60_000 })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(err.message))
  page.on('console', (msg) => {
    // the page asks /api/auth/me first; its 401 is how it learns nobody is logged in
    if (msg.type() === 'error' && !msg.text().includes('status of 401')) problems.push(msg.text())
  })

  await page.goto(running.url + '/')
  await page.locator('#login-form input[name=email]').fill('browser@example.com')
  await page.locator('#login-form input[name=password]').fill('browser password')
  await page.locator('#login-submit').click()
  await page.locator('#dashboard').waitFor({ state: 'visible' })
  await page.locator('#net-worth', { hasText: '$1,000.00' }).waitFor()
  t.equal(await page.locator('#user-name').textContent(), 'Browser User')
  t.equal(await page.locator('#transactions tr').count(), 1)

  await page.locator('#tx-amount').fill('-42.50')
  await page.locator('#tx-category').fill('groceries')
  await page.locator('#tx-description').fill('farmers market')
  await page.locator('#tx-submit').click()
  await page.locator('#net-worth', { hasText: '$957.50' }).waitFor({ timeout: 10_000 })
  t.equal(await page.locator('#net-worth').textContent(), '$957.50', 'the summary changed')
  t.equal(await page.locator('#spent').textContent(), '$42.50')
  t.equal(await page.locator('#transactions tr').count(), 2)
  await page.locator('#insights li', { hasText: /groceries|income/ }).first().waitFor({ timeout: 10_000 })
  t.same(problems, [], 'no script errors (a CSP violation would show here)')
})
