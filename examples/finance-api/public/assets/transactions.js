// The transaction list (cursor pages, newest first) and the add/edit form.
// The API validates; the form shows its messages next to the field they name.
import { api } from './api.js'
import { $, money, shortDate } from './format.js'

const PAGE_SIZE = 10
// cursors[i] opens page i (page 0 has none): "Newer" walks back through them
let cursors = [null]
let page = 0
let nextCursor = null
let shown = new Map()
let editing = null

function row (t) {
  const tr = document.createElement('tr')
  const date = document.createElement('td')
  date.textContent = shortDate(t.occurredAt)
  const what = document.createElement('td')
  what.textContent = t.category
  if (t.description) {
    const d = document.createElement('span')
    d.className = 'desc'
    d.textContent = t.description
    what.append(d)
  }
  const amount = document.createElement('td')
  amount.className = 'num ' + (t.amountCents < 0 ? 'neg' : 'pos')
  amount.textContent = money(t.amountCents)
  const actions = document.createElement('td')
  const edit = document.createElement('button')
  edit.type = 'button'
  edit.className = 'link edit'
  edit.dataset.id = t.id
  edit.textContent = 'Edit'
  edit.setAttribute('aria-label', `Edit ${t.category} ${money(t.amountCents)} of ${shortDate(t.occurredAt)}`)
  actions.append(edit)
  tr.append(date, what, amount, actions)
  return tr
}

export async function loadTransactions (where = 'first') {
  if (where === 'first') { cursors = [null]; page = 0 }
  if (where === 'older' && nextCursor) { cursors[page + 1] = nextCursor; page++ }
  if (where === 'newer' && page > 0) page--
  const cursor = cursors[page]
  const q = `?limit=${PAGE_SIZE}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : '')
  const result = await api('GET', '/api/transactions' + q)
  shown = new Map(result.items.map((t) => [t.id, t]))
  $('transactions').replaceChildren(...result.items.map(row))
  nextCursor = result.next
  $('older').disabled = !nextCursor
  $('newer').disabled = page === 0
  $('tx-page-label').textContent = result.items.length === 0 ? 'No transactions yet.' : `Page ${page + 1}, newest first`
}

function clearFieldErrors () {
  for (const field of document.querySelectorAll('#tx-form .field-error')) field.textContent = ''
  for (const input of document.querySelectorAll('#tx-form [aria-invalid]')) input.removeAttribute('aria-invalid')
  $('tx-error').textContent = ''
}

/** The API's message under the field it names (`body/amountCents must …`), or under the form. */
export function showTxError (err, explain) {
  const target = err.field && $(`tx-${err.field}-error`)
  if (target) {
    target.textContent = err.fieldMessage
    const input = $(`tx-${err.field === 'amountCents' ? 'amount' : err.field === 'occurredAt' ? 'date' : err.field}`)
    input.setAttribute('aria-invalid', 'true')
    input.focus()
    $('tx-error').textContent = 'Please correct the highlighted field.'
  } else {
    $('tx-error').textContent = explain(err)
  }
}

/** What the form holds, as the API's fields; the date only when it was set (or changed, when editing). */
function readForm () {
  const f = new FormData($('tx-form'))
  const amount = String(f.get('amount') ?? '').trim()
  const body = {
    // an empty or unreadable amount is sent as 0, which the API refuses with its own words
    amountCents: amount === '' || Number.isNaN(Number(amount)) ? 0 : Math.round(Number(amount) * 100),
    category: String(f.get('category') ?? ''),
    description: String(f.get('description') ?? '')
  }
  const date = String(f.get('date') ?? '')
  const original = editing ? editing.occurredAt.slice(0, 10) : ''
  // noon UTC: the same calendar day in every time zone from UTC-11 to UTC+11
  if (date && date !== original) body.occurredAt = `${date}T12:00:00Z`
  return body
}

export async function submitTx () {
  clearFieldErrors()
  const body = readForm()
  if (editing) {
    await api('PATCH', `/api/transactions/${editing.id}`, body)
    $('tx-status').textContent = 'Transaction saved.'
  } else {
    await api('POST', '/api/transactions', { accountId: $('tx-account').value, ...body })
    $('tx-status').textContent = 'Transaction added.'
  }
  stopEditing()
}

export function startEditing (id) {
  const t = shown.get(id)
  if (!t) return
  clearFieldErrors()
  editing = t
  $('tx-form-title').textContent = 'Edit a transaction'
  $('tx-submit').textContent = 'Save'
  $('tx-cancel').hidden = false
  $('tx-account').value = t.accountId
  $('tx-account').disabled = true
  $('tx-amount').value = (t.amountCents / 100).toFixed(2)
  $('tx-category').value = t.category
  $('tx-description').value = t.description
  $('tx-date').value = t.occurredAt.slice(0, 10)
  $('tx-status').textContent = ''
  $('tx-amount').focus()
}

export function stopEditing () {
  const wasEditing = editing
  editing = null
  $('tx-form').reset()
  $('tx-form-title').textContent = 'Add a transaction'
  $('tx-submit').textContent = 'Add'
  $('tx-cancel').hidden = true
  $('tx-account').disabled = false
  return wasEditing
}

export function resetTransactions () {
  stopEditing()
  clearFieldErrors()
  $('tx-status').textContent = ''
}
