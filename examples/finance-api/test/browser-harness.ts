import { createRequire } from 'node:module'
import { readFile } from 'node:fs/promises'
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core'
import type { TestContext } from '@headroom/testing'
import { loadConfig } from '../src/config.js'
import { start } from '../src/server.js'
import { Client } from './helpers.js'

// functions given to page.evaluate run in the page, where `document` exists (the tests compile without the DOM library)
declare const document: unknown

/** Debian's Chromium (.ci/needs installs it); playwright's own browser downloads are not used. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']
/** A loaded CI machine (2 cores, load 6–13) can take seconds to render: waits are on conditions, bounded generously. */
export const WAIT_MS = 60_000
export const PASSWORD = 'browser password'

const DAY_MS = 86_400_000
export const daysAgo = (n: number) => new Date(Date.now() - n * DAY_MS).toISOString()

export interface Dashboard { url: string, browser: Browser, setup: Client, accountId: string }

/**
 * The example as `pnpm start` runs it (embedded PostgreSQL, real server on a
 * port), a user with a salary and Chromium. `env` overrides the configuration
 * (a low login limit, say).
 */
export async function dashboard (t: TestContext, email: string, env: Record<string, string> = {}): Promise<Dashboard> {
  const running = await start(loadConfig({ PORT: '0', LOG_LEVEL: 'silent', MARKET_LATENCY_MS: '0', INSIGHTS_COST_MS: '50', ...env }))
  t.teardown(() => running.close())
  const setup = new Client(running.url)
  const signup = await setup.signup(email, PASSWORD, 'Browser User')
  if (signup.status !== 201) throw new Error(`signup: ${signup.status} ${JSON.stringify(signup.body)}`)
  const accountId = (await setup.get('/api/accounts')).body.items[0].id as string
  await addTx(setup, accountId, 100000, 'salary', daysAgo(45))
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 60_000 })
  t.teardown(() => browser.close())
  return { url: running.url, browser, setup, accountId }
}

export async function addTx (client: Client, accountId: string, amountCents: number, category: string, occurredAt: string, description = '') {
  const res = await client.post('/api/transactions', { accountId, amountCents, category, occurredAt, description })
  if (res.status !== 201) throw new Error(`transaction: ${res.status} ${JSON.stringify(res.body)}`)
}

/** Script errors and failed requests the page reports; `expected` statuses (a 401 before login, a driven 429) are not problems. */
export function problemsOf (page: Page, expected: number[] = [401]): string[] {
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(err.message))
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !expected.some((s) => msg.text().includes(`status of ${s}`))) problems.push(msg.text())
  })
  return problems
}

export async function newPage (d: Dashboard, options: BrowserContextOptions = {}): Promise<Page> {
  const context = await d.browser.newContext(options)
  const page = await context.newPage()
  page.setDefaultTimeout(WAIT_MS)
  return page
}

export async function logIn (page: Page, url: string, email: string) {
  await page.goto(url + '/')
  const form = page.locator('#login-form')
  await form.getByLabel('Email').fill(email)
  await form.getByLabel('Password').fill(PASSWORD)
  await form.getByRole('button', { name: 'Log in' }).click()
  await page.locator('#dashboard').waitFor({ state: 'visible' })
  // the charts are the last thing a login loads
  await page.locator('#balance-chart svg').waitFor()
}

/** axe-core's own source, injected into the page (the context must bypass the CSP: it is an inline script). */
export async function axeViolations (page: Page): Promise<Array<{ id: string, impact: string, help: string, nodes: string[] }>> {
  const source = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
  await page.addScriptTag({ content: source })
  return page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: (ctx: unknown) => Promise<{ violations: Array<{ id: string, impact: string, help: string, nodes: Array<{ target: unknown[] }> }> }> } }).axe
    const result = await axe.run(document)
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => JSON.stringify(n.target)) }))
  })
}
