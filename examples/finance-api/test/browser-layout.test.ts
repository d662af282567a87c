import { mkdir } from 'node:fs/promises'
import type { Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { addTx, daysAgo, dashboard, logIn, newPage, problemsOf, type Dashboard } from './browser-harness.js'

// functions given to page.evaluate run in the page, where `document` exists (the tests compile without the DOM library)
declare const document: any

/** `SCREENSHOTS=1` writes the README's pictures (docs/screenshots/) from this run. */
const SCREENSHOTS = process.env.SCREENSHOTS === '1' ? new URL('../../../docs/screenshots/', import.meta.url) : undefined
const EMAIL = 'layout@example.com'
const PHONE = { viewport: { width: 375, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
const DESKTOP = { viewport: { width: 1280, height: 900 } }

async function month (d: Dashboard) {
  const spending: Array<[number, string, number, string]> = [
    [-1450_00, 'rent', 28, 'December rent'], [-86_40, 'groceries', 26, 'Market hall'], [-42_10, 'transport', 24, 'Monthly pass'],
    [-64_99, 'utilities', 21, 'Electricity'], [-23_50, 'dining', 19, 'Lunch with Sam'], [-112_30, 'groceries', 15, 'Weekly shop'],
    [-38_00, 'entertainment', 12, 'Concert'], [-18_75, 'dining', 8, 'Pizza'], [-94_20, 'groceries', 5, 'Weekly shop'], [-12_00, 'transport', 2, 'Taxi']
  ]
  await addTx(d.setup, d.accountId, 2_400_00, 'salary', daysAgo(29), 'Acme Corp')
  for (const [cents, category, ago, description] of spending) await addTx(d.setup, d.accountId, cents, category, daysAgo(ago), description)
}

/** Nothing wider than the screen: the page never scrolls sideways, and every visible control is inside it. */
async function checkFits (t: Test, page: Page, what: string) {
  const { scroll, width, outside } = await page.evaluate(() => {
    const width = document.documentElement.clientWidth
    const outside = [...document.querySelectorAll('button, input, select, a[href], svg')]
      .filter((el) => el.getClientRects().length > 0 && !el.closest('[hidden]'))
      .map((el) => ({ id: el.id || el.textContent || el.tagName, r: el.getBoundingClientRect() }))
      .filter(({ r }) => r.width > 0 && (r.left < -0.5 || r.right > width + 0.5) && !(r.bottom < 0 && r.top < -1000))
      .map(({ id, r }) => `${id}: ${Math.round(r.left)}–${Math.round(r.right)}`)
    return { scroll: document.documentElement.scrollWidth, width, outside }
  })
  t.ok(scroll <= width, `${what}: no horizontal scroll (${scroll} ≤ ${width} px)`)
  t.same(outside, [], `${what}: every control within the screen`)
}

/** Tab from the top: every visible, enabled control is reached, in the order of the page. */
async function checkKeyboard (t: Test, page: Page, what: string) {
  const controls = await page.evaluate(() => [...document.querySelectorAll('button, input, select, a[href]')]
    .filter((el) => el.getClientRects().length > 0 && !(el as { disabled?: boolean }).disabled)
    .map((el) => el.id || el.getAttribute('aria-label') || el.textContent!.trim()))
  // the first element of the page: the skip link
  await page.locator('a.skip').focus()
  const reached: string[] = ['Skip to content']
  for (let i = 0; i < controls.length + 5; i++) {
    await page.keyboard.press('Tab')
    const id = await page.evaluate(() => document.activeElement && document.activeElement !== document.body
      ? document.activeElement.id || document.activeElement.getAttribute('aria-label') || document.activeElement.textContent!.trim()
      : '')
    if (id && !reached.includes(id)) reached.push(id)
  }
  t.same(reached.filter((id) => controls.includes(id)), controls, `${what}: Tab reaches every control in page order`)
}

t.test('desktop and phone layouts', async (t) => {
  const d = await dashboard(t, EMAIL)
  await month(d)
  if (SCREENSHOTS) await mkdir(SCREENSHOTS, { recursive: true })

  for (const [name, options] of [['desktop', DESKTOP], ['phone', PHONE]] as const) {
    t.test(name, async (t) => {
      const page = await newPage(d, options)
      const problems = problemsOf(page)
      await page.goto(d.url + '/')
      await page.locator('#login-form').waitFor({ state: 'visible' })
      if (SCREENSHOTS) await page.screenshot({ path: new URL(`${name}-login.png`, SCREENSHOTS).pathname, fullPage: true })
      await checkFits(t, page, `${name} login`)
      await checkKeyboard(t, page, `${name} login`)

      await logIn(page, d.url, EMAIL)
      await page.locator('#quotes li:not(.muted)').first().waitFor()
      await page.locator('#insights li:not(.muted)').first().waitFor()
      if (SCREENSHOTS) await page.screenshot({ path: new URL(`${name}-dashboard.png`, SCREENSHOTS).pathname, fullPage: true })
      await checkFits(t, page, `${name} dashboard`)
      await checkKeyboard(t, page, `${name} dashboard`)
      await page.locator('#transactions button.edit').first().click()
      await checkFits(t, page, `${name} dashboard, editing`)
      t.same(problems, [], 'no script errors')
    })
  }
})
