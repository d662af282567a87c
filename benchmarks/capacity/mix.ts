/**
 * The seed's dashboard mix (the same 20 slots as the finance-load benchmark,
 * examples/finance-api/bench/load.ts): 6 summary, 5 transaction pages, 3
 * quotes, 2 insights, 3 static files, 1 write; requests spread over
 * logged-in virtual users.
 */
import { SEED_PASSWORD, seedEmail } from '../../examples/finance-api/src/seed.js'
import type { Req } from './load.js'

export const MIX = { summary: 6, transactions: 5, quotes: 3, insights: 2, static: 3, write: 1 } as const
export type Kind = keyof typeof MIX
export const MIX_SLOTS = Object.values(MIX).reduce((a, b) => a + b, 0)
export const STATIC_SHARE = MIX.static / MIX_SLOTS

export interface VirtualUser { cookie: string, csrfToken: string, accountId: string }

const PROXY = { 'x-forwarded-proto': 'https' }
const STATICS = ['/', '/assets/app.js', '/assets/app.css', '/assets/favicon.svg']

export async function logIn (base: string, userId: number): Promise<VirtualUser> {
  const email = seedEmail(userId)
  const res = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { ...PROXY, 'content-type': 'application/json' }, body: JSON.stringify({ email, password: SEED_PASSWORD }) })
  if (res.status !== 200) throw new Error(`login of ${email}: ${res.status} ${await res.text()}`)
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ')
  const { csrfToken } = await res.json() as { csrfToken: string }
  const accounts = await (await fetch(`${base}/api/accounts`, { headers: { ...PROXY, cookie } })).json() as { items: Array<{ id: string }> }
  return { cookie, csrfToken, accountId: accounts.items[0]!.id }
}

/** `count` virtual users spread over the seeded ids, 8 logins at a time. */
export async function logInMany (base: string, firstUserId: number, seeded: number, count: number): Promise<VirtualUser[]> {
  const step = Math.max(1, Math.floor(seeded / count))
  const out: VirtualUser[] = []
  for (let i = 0; i < count; i += 8) {
    const ids = Array.from({ length: Math.min(8, count - i) }, (_, j) => firstUserId + (i + j) * step)
    out.push(...await Promise.all(ids.map((id) => logIn(base, id))))
  }
  return out
}

/** A request source cycling through a shuffled 20-slot mix, each request for a random virtual user. */
export function mixSource (users: VirtualUser[], random: () => number = Math.random): () => Req {
  const slots = (Object.entries(MIX) as Array<[Kind, number]>).flatMap(([k, n]) => Array.from({ length: n }, () => k))
  for (let i = slots.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [slots[i], slots[j]] = [slots[j]!, slots[i]!]
  }
  let n = 0
  return () => {
    const kind = slots[n % slots.length]!
    const u = users[Math.floor(random() * users.length)]!
    const headers = { ...PROXY, cookie: u.cookie }
    const i = n++
    switch (kind) {
      case 'summary': return { kind, method: 'GET', path: '/api/summary', headers }
      case 'transactions': return { kind, method: 'GET', path: '/api/transactions?limit=20', headers }
      case 'quotes': return { kind, method: 'GET', path: '/api/quotes?symbols=AAPL,MSFT,VTI', headers }
      case 'insights': return { kind, method: 'GET', path: '/api/insights', headers }
      case 'static': return { kind, method: 'GET', path: STATICS[i % STATICS.length]!, headers: PROXY }
      case 'write': return {
        kind,
        method: 'POST',
        path: '/api/transactions',
        headers: { ...headers, 'content-type': 'application/json', 'x-csrf-token': u.csrfToken },
        body: JSON.stringify({ accountId: u.accountId, amountCents: -Math.round(100 + random() * 9900), category: 'groceries', description: 'capacity run' })
      }
    }
  }
}
