/* global ResizeObserver */
// The dashboard: plain ES modules served from /assets (script-src 'self'), no
// build step. It talks to the same JSON API as curl does, with the session
// cookie and the CSRF token from login.
import { api, explain, setCsrfToken } from './api.js'
import { drawBalance, drawCategories } from './charts.js'
import { $, dayLabel, li, money } from './format.js'
import { loadTransactions, resetTransactions, showTxError, startEditing, stopEditing, submitTx } from './transactions.js'

let lastTrends = null
let retry = null

function show (view) {
  $('loading').hidden = true
  $('login-view').hidden = view !== 'login'
  $('signup-view').hidden = view !== 'signup'
  $('dashboard').hidden = view !== 'dashboard'
  $('who').hidden = view !== 'dashboard'
}

/** A failed load: explained in words (a 429 or 503 with when to retry), with a button that runs it again. */
function notice (err, again) {
  retry = again
  $('notice-text').textContent = explain(err)
  $('notice-retry').hidden = !again
  $('notice').hidden = false
}

function clearNotice () {
  $('notice').hidden = true
  retry = null
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

function drawCharts () {
  if (!lastTrends) return
  const period = `last ${lastTrends.days} days`
  drawCategories($('category-chart'), lastTrends.byCategory, { money, period })
  drawBalance($('balance-chart'), lastTrends.balance, { money, period, date: dayLabel })
}

async function loadCharts () {
  const box = $('charts-status')
  box.textContent = 'Loading charts…'
  $('category-chart').setAttribute('aria-busy', 'true')
  $('balance-chart').setAttribute('aria-busy', 'true')
  try {
    lastTrends = await api('GET', `/api/trends?days=${$('period').value}`)
    drawCharts()
    box.textContent = ''
  } finally {
    $('category-chart').removeAttribute('aria-busy')
    $('balance-chart').removeAttribute('aria-busy')
  }
}

async function loadInsights () {
  try {
    const i = await api('GET', '/api/insights')
    $('insights').replaceChildren(...i.messages.map((m) => li(m)))
  } catch (err) {
    $('insights').replaceChildren(li(explain(err), 'error'))
  }
}

async function loadQuotes () {
  try {
    const q = await api('GET', '/api/quotes')
    $('quotes').replaceChildren(...q.quotes.map((x) => li(`${x.symbol} ${x.price.toFixed(2)} (${x.change >= 0 ? '+' : ''}${x.change.toFixed(2)})`)))
  } catch (err) {
    $('quotes').replaceChildren(li(explain(err), 'error'))
  }
}

/** Everything a change of data shows in: the summary, the charts, the list. */
async function refresh () {
  try {
    await Promise.all([loadSummary(), loadCharts(), loadTransactions()])
  } catch (err) {
    $('charts-status').textContent = ''
    notice(err, refresh)
    return
  }
  clearNotice()
}

async function enter (session) {
  setCsrfToken(session.csrfToken)
  $('user-name').textContent = session.user.name
  show('dashboard')
  $('main').focus()
  await refresh()
  loadInsights()
  loadQuotes()
}

function leave () {
  setCsrfToken(null)
  resetTransactions()
  clearNotice()
  show('login')
  $('login-email').focus()
}

/** Submits an auth form; its errors (a 429 with when to retry included) go under it. */
function authForm (form, errorId, send) {
  $(form).addEventListener('submit', async (e) => {
    e.preventDefault()
    const f = new FormData(e.target)
    const button = e.target.querySelector('button[type=submit]')
    $(errorId).textContent = ''
    button.disabled = true
    try {
      const session = await send(f)
      e.target.reset()
      await enter(session)
    } catch (err) {
      $(errorId).textContent = explain(err)
    } finally {
      button.disabled = false
    }
  })
}

authForm('login-form', 'login-error', (f) => api('POST', '/api/auth/login', { email: f.get('email'), password: f.get('password') }))
authForm('signup-form', 'signup-error', (f) => api('POST', '/api/auth/signup', { email: f.get('email'), password: f.get('password'), name: f.get('name') }))

$('show-signup').addEventListener('click', () => { show('signup'); $('signup-name').focus() })
$('show-login').addEventListener('click', () => { show('login'); $('login-email').focus() })

$('tx-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  const button = $('tx-submit')
  button.disabled = true
  try {
    await submitTx()
  } catch (err) {
    showTxError(err, explain)
    return
  } finally {
    button.disabled = false
  }
  await refresh()
})

$('tx-cancel').addEventListener('click', () => {
  const t = stopEditing()
  if (t) document.querySelector(`#transactions button[data-id="${t.id}"]`)?.focus()
})
$('transactions').addEventListener('click', (e) => {
  const button = e.target.closest('button.edit')
  if (button) startEditing(button.dataset.id)
})
$('older').addEventListener('click', () => loadTransactions('older').catch((err) => notice(err, () => loadTransactions())))
$('newer').addEventListener('click', () => loadTransactions('newer').catch((err) => notice(err, () => loadTransactions())))
$('period').addEventListener('change', () => loadCharts().catch((err) => { $('charts-status').textContent = ''; notice(err, loadCharts) }))

$('notice-retry').addEventListener('click', () => { const again = retry; clearNotice(); again?.() })
$('notice-close').addEventListener('click', clearNotice)

$('logout').addEventListener('click', async () => {
  await api('POST', '/api/auth/logout').catch(() => {})
  leave()
})
$('logout-everywhere').addEventListener('click', async () => {
  await api('POST', '/api/auth/logout-everywhere').catch(() => {})
  leave()
})

// the charts are drawn at their container's width: redraw when it changes (a phone turned, a window resized)
let lastWidth = 0
new ResizeObserver(() => {
  const width = $('category-chart').clientWidth
  if (width !== lastWidth) { lastWidth = width; drawCharts() }
}).observe($('category-chart'))

api('GET', '/api/auth/me').then(enter, (err) => {
  show('login')
  if (err.status !== 401) $('login-error').textContent = explain(err)
})
