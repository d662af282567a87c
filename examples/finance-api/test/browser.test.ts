import t from 'tap'
import { addTx, daysAgo, dashboard, logIn, newPage, problemsOf } from './browser-harness.js'

// functions given to page.evaluate run in the page, where `document` exists (the tests compile without the DOM library)
declare const document: any

const EMAIL = 'browser@example.com'

t.test('the dashboard: log in, add a transaction, the charts follow, edit it, page through the list', async (t) => {
  const d = await dashboard(t, EMAIL)
  await addTx(d.setup, d.accountId, -30_00, 'rent', daysAgo(5), 'half of it')
  const page = await newPage(d)
  // (the 400s are the two refused submissions below)
  const problems = problemsOf(page, [401, 400])

  await page.goto(d.url + '/')
  await page.locator('#login-form').waitFor({ state: 'visible' })
  t.equal(await page.locator('#login-form input').count(), 2, 'the login form asks for email and password only')
  t.notOk(await page.getByLabel('Name').isVisible(), 'no Name field on the login form')
  await page.locator('#show-signup').click()
  t.ok(await page.locator('#signup-form').getByLabel('Name').isVisible(), 'signup has its own form, with a name')
  await page.locator('#show-login').click()

  await logIn(page, d.url, EMAIL)
  await page.locator('#net-worth', { hasText: '$970.00' }).waitFor()
  t.equal(await page.locator('#user-name').textContent(), 'Browser User')
  const form = page.locator('#tx-form')
  const categories = page.locator('#category-chart svg')
  const balance = page.locator('#balance-chart svg')
  t.match(await categories.getAttribute('aria-label'), /last 30 days: rent \$30\.00$/)
  t.match(await balance.getAttribute('aria-label'), /\$970\.00 on \w+ \d+; lowest/)
  t.equal(await categories.locator('rect').count(), 1, 'one bar')

  await form.getByLabel('Amount').fill('-42.50')
  await form.getByLabel('Category').fill('groceries')
  await form.getByLabel('Description').fill('farmers market')
  await page.getByRole('button', { name: 'Add', exact: true }).click()
  await page.locator('#net-worth', { hasText: '$927.50' }).waitFor()
  await page.locator('#category-chart svg[aria-label*="groceries $42.50"]').waitFor()
  t.match(await categories.getAttribute('aria-label'), /groceries \$42\.50, rent \$30\.00$/, 'the bar chart has the new category, largest first')
  t.equal(await categories.locator('rect').count(), 2)
  t.match(await balance.getAttribute('aria-label'), /\$927\.50 on \w+ \d+; lowest/, 'the balance line ends at the new balance')
  t.equal(await page.locator('#spent').textContent(), '$72.50')
  t.equal(await page.locator('#transactions tr').count(), 3)
  t.equal(await page.locator('#tx-status').textContent(), 'Transaction added.')

  // the API's validation message, under the field it names
  await form.getByLabel('Category').fill('')
  await page.getByRole('button', { name: 'Add', exact: true }).click()
  await page.locator('#tx-amountCents-error', { hasText: 'must not be 0' }).waitFor()
  t.equal(await form.getByLabel('Amount').getAttribute('aria-invalid'), 'true')
  t.ok(await form.getByLabel('Amount').evaluate((el) => el === document.activeElement), 'focus is on the field to correct')
  await form.getByLabel('Amount').fill('-1')
  await page.getByRole('button', { name: 'Add', exact: true }).click()
  await page.locator('#tx-category-error', { hasText: 'fewer than 1 characters' }).waitFor()
  t.equal(await page.locator('#tx-amountCents-error').textContent(), '', 'the corrected field\'s message is gone')

  await page.getByRole('button', { name: /^Edit groceries/ }).click()
  t.equal(await page.locator('#tx-form-title').textContent(), 'Edit a transaction')
  t.equal(await form.getByLabel('Amount').inputValue(), '-42.50')
  await form.getByLabel('Amount').fill('-40')
  await form.getByLabel('Category').fill('Market')
  await page.getByRole('button', { name: 'Save' }).click()
  await page.locator('#net-worth', { hasText: '$930.00' }).waitFor()
  await page.locator('#category-chart svg[aria-label*="market $40.00"]').waitFor()
  t.notMatch(await categories.getAttribute('aria-label'), /groceries/, 'the edit moved the spending to its new category')
  t.equal(await page.locator('#tx-form-title').textContent(), 'Add a transaction', 'the form is back to adding')

  await page.getByLabel('Period').selectOption('7')
  await page.locator('#category-chart svg[aria-label*="last 7 days"]').waitFor()
  t.match(await categories.getAttribute('aria-label'), /last 7 days: market \$40\.00, rent \$30\.00$/)
  t.equal(await balance.locator('text').filter({ hasText: /^\w{3} \d+$/ }).count(), 3, 'first, middle and last day on the axis')

  // pages of 10, newest first: 12 more transactions make two pages of 15
  for (let i = 0; i < 12; i++) await addTx(d.setup, d.accountId, -(i + 1) * 100, 'coffee', daysAgo(10 + i))
  await page.reload()
  await page.locator('#dashboard').waitFor({ state: 'visible' })
  await page.locator('#transactions tr').nth(9).waitFor()
  t.equal(await page.locator('#transactions tr').count(), 10)
  t.ok(await page.locator('#newer').isDisabled())
  await page.locator('#older').click()
  await page.locator('#tx-page-label', { hasText: 'Page 2' }).waitFor()
  t.equal(await page.locator('#transactions tr').count(), 5)
  t.ok(await page.locator('#older').isDisabled(), 'the last page')
  t.match(await page.locator('#transactions tr').last().textContent(), /salary/, 'the oldest is last')
  await page.locator('#newer').click()
  await page.locator('#tx-page-label', { hasText: 'Page 1' }).waitFor()
  t.match(await page.locator('#transactions tr').first().textContent(), /market/)

  await page.getByRole('button', { name: 'Log out', exact: true }).click()
  await page.locator('#login-form').waitFor({ state: 'visible' })
  t.equal(await page.getByLabel('Password').first().inputValue(), '', 'the password is not left in the form')
  t.same(problems, [], 'no script errors (a CSP violation would show here)')
})
