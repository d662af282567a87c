import t from 'tap'
import { dashboard, logIn, newPage, PASSWORD, problemsOf } from './browser-harness.js'
import { Client } from './helpers.js'

const EMAIL = 'errors@example.com'

t.test('a 429 and a 503 are explained in words, with when to retry from Retry-After', async (t) => {
  // two failed logins per (address, account), and a market that always fails (its 503 is real, not intercepted)
  const d = await dashboard(t, EMAIL, { LOGIN_PAIR_FAILURES_MAX: '2', MARKET_FAILURE_RATE: '1' })

  t.test('the login limit: 429', async (t) => {
    // an account of its own: the failures below block its (address, account) pair for the window
    const victim = 'throttled@example.com'
    t.equal((await new Client(d.url).signup(victim, PASSWORD)).status, 201)
    const page = await newPage(d)
    problemsOf(page, [401, 429])
    await page.goto(d.url + '/')
    const form = page.locator('#login-form')
    await form.getByLabel('Email').fill(victim)
    let throttled
    for (let attempt = 1; attempt <= 5 && !throttled; attempt++) {
      await form.getByLabel('Password').fill('a wrong password')
      const [res] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/api/auth/login')),
        form.getByRole('button', { name: 'Log in' }).click()
      ])
      if (res.status() === 429) throttled = res
      else t.equal(res.status(), 401, `attempt ${attempt}: a wrong password`)
      await page.locator('#login-error:not(:empty)').waitFor()
      await page.locator('#login-submit:not([disabled])').waitFor()
    }
    t.ok(throttled, 'the limit answered 429')
    const retryAfter = Number(throttled!.headers()['retry-after'])
    t.ok(retryAfter > 0, `Retry-After: ${retryAfter}`)
    const text = await page.locator('#login-error').textContent()
    t.match(text, /^Too many requests: the server limits how often this can be done \(too many failed attempts/)
    // the page reads Retry-After a moment after the server wrote it: the same number or one less
    const said = Number(/Try again in (\d+) seconds \(at \d\d:\d\d:\d\d/.exec(text!)?.[1])
    t.ok(said <= retryAfter && said >= retryAfter - 1, `"${text}" says when (Retry-After ${retryAfter})`)
  })

  t.test('a 503 of the summary (intercepted) and of the market (real)', async (t) => {
    const page = await newPage(d)
    problemsOf(page, [401, 503])
    await page.route('**/api/summary', (route) => route.fulfill({
      status: 503,
      headers: { 'retry-after': '7', 'content-type': 'application/json' },
      body: JSON.stringify({ statusCode: 503, error: 'Service Unavailable', message: 'the service is temporarily unavailable; retry shortly' })
    }))
    await page.goto(d.url + '/')
    const form = page.locator('#login-form')
    await form.getByLabel('Email').fill(EMAIL)
    await form.getByLabel('Password').fill(PASSWORD)
    await form.getByRole('button', { name: 'Log in' }).click()
    const notice = page.locator('#notice')
    await notice.waitFor({ state: 'visible' })
    t.match(await page.locator('#notice-text').textContent(),
      /^The service is busy or briefly unavailable \(the service is temporarily unavailable; retry shortly\)\. Try again in 7 seconds \(at \d\d:\d\d:\d\d/)
    t.equal(await page.locator('#net-worth').textContent(), '–', 'no made-up figure')

    await page.unroute('**/api/summary')
    await page.locator('#notice-retry').click()
    await notice.waitFor({ state: 'hidden' })
    await page.locator('#net-worth', { hasText: '$1,000.00' }).waitFor()
    t.pass('"Try again" loads the dashboard once the service is back')

    const quotes = page.locator('#quotes li.error')
    await quotes.waitFor()
    t.match(await quotes.textContent(), /^The service is busy or briefly unavailable \(market data is unavailable[^)]*\)\. Try again in 5 seconds/,
      'the market\'s own 503 and Retry-After, in the Markets card')
  })

  t.test('the error states leave a logged-in user working', async (t) => {
    const page = await newPage(d)
    await logIn(page, d.url, EMAIL)
    t.ok(await page.locator('#notice').isHidden(), 'no notice when all is well')
  })
})
