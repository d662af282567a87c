// The dashboard: plain modules, no build step. It talks to the same JSON API
// as curl does, with the session cookie and the CSRF token from login.
const $ = (id) => document.getElementById(id)
let csrfToken = null
let nextCursor = null
let signingUp = false

const money = (cents) => (cents / 100).toLocaleString('en-US', { style: 'currency', currency: 'USD' })

async function api (method, path, body) {
  const headers = { accept: 'application/json' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken
  const res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) })
  const data = res.status === 204 ? null : await res.json().catch(() => null)
  if (!res.ok) {
    const err = new Error((data && data.message) || `${res.status} ${res.statusText}`)
    err.status = res.status
    throw err
  }
  return data
}

function show (loggedIn) {
  $('login-view').hidden = loggedIn
  $('dashboard').hidden = !loggedIn
  $('who').hidden = !loggedIn
}

function li (text, className) {
  const el = document.createElement('li')
  el.textContent = text
  if (className) el.className = className
  return el
}

async function loadSummary () {
  const s = await api('GET', '/api/summary')
  $('net-worth').textContent = money(s.netWorthCents)
  $('income').textContent = money(s.last30Days.incomeCents)
  $('spent').textContent = money(s.last30Days.spentCents)
  $('accounts').replaceChildren(...s.accounts.map((a) => li(`${a.name}: ${money(a.balanceCents)}`)))
  const select = $('tx-account')
  const chosen = select.value
  select.replaceChildren(...s.accounts.map((a) => {
    const o = document.createElement('option')
    o.value = a.id
    o.textContent = a.name
    return o
  }))
  if (chosen) select.value = chosen
}

function row (t) {
  const tr = document.createElement('tr')
  const cells = [new Date(t.occurredAt).toLocaleDateString(), t.category, t.description, money(t.amountCents)]
  cells.forEach((text, i) => {
    const td = document.createElement('td')
    td.textContent = text
    if (i === 3) td.className = 'num ' + (t.amountCents < 0 ? 'neg' : 'pos')
    tr.append(td)
  })
  return tr
}

async function loadTransactions (append = false) {
  const q = append && nextCursor ? `?limit=20&cursor=${encodeURIComponent(nextCursor)}` : '?limit=20'
  const page = await api('GET', '/api/transactions' + q)
  const rows = page.items.map(row)
  if (append) $('transactions').append(...rows)
  else $('transactions').replaceChildren(...rows)
  nextCursor = page.next
  $('more').hidden = !nextCursor
}

async function loadInsights () {
  try {
    const i = await api('GET', '/api/insights')
    $('insights').replaceChildren(...i.messages.map((m) => li(m)))
  } catch (err) {
    $('insights').replaceChildren(li(err.message, 'error'))
  }
}

async function loadQuotes () {
  try {
    const q = await api('GET', '/api/quotes')
    $('quotes').replaceChildren(...q.quotes.map((x) => li(`${x.symbol} ${x.price.toFixed(2)} (${x.change >= 0 ? '+' : ''}${x.change.toFixed(2)})`)))
  } catch (err) {
    $('quotes').replaceChildren(li(err.message, 'error'))
  }
}

async function enter (session) {
  csrfToken = session.csrfToken
  $('user-name').textContent = session.user.name
  show(true)
  await Promise.all([loadSummary(), loadTransactions()])
  loadInsights()
  loadQuotes()
}

$('toggle-signup').addEventListener('click', () => {
  signingUp = !signingUp
  $('name-field').hidden = !signingUp
  $('login-submit').textContent = signingUp ? 'Sign up' : 'Log in'
  $('toggle-signup').textContent = signingUp ? 'Have an account? Log in' : 'New here? Sign up'
})

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  const f = new FormData(e.target)
  $('login-error').textContent = ''
  try {
    const session = signingUp
      ? await api('POST', '/api/auth/signup', { email: f.get('email'), password: f.get('password'), name: f.get('name') || f.get('email') })
      : await api('POST', '/api/auth/login', { email: f.get('email'), password: f.get('password') })
    await enter(session)
  } catch (err) {
    $('login-error').textContent = err.message
  }
})

$('tx-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  const f = new FormData(e.target)
  $('tx-error').textContent = ''
  try {
    await api('POST', '/api/transactions', {
      accountId: f.get('accountId'),
      amountCents: Math.round(Number(f.get('amount')) * 100),
      category: f.get('category'),
      description: f.get('description') || ''
    })
    e.target.reset()
    await Promise.all([loadSummary(), loadTransactions()])
  } catch (err) {
    $('tx-error').textContent = err.message
  }
})

$('more').addEventListener('click', () => loadTransactions(true))

$('logout').addEventListener('click', async () => {
  await api('POST', '/api/auth/logout').catch(() => {})
  csrfToken = null
  show(false)
})

$('logout-everywhere').addEventListener('click', async () => {
  await api('POST', '/api/auth/logout-everywhere').catch(() => {})
  csrfToken = null
  show(false)
})

api('GET', '/api/auth/me').then(enter, () => show(false))
