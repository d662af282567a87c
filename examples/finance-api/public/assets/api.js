// The JSON API as the page uses it: the session cookie, the CSRF token from
// login, and errors that keep what the page needs to explain them (the
// status, the API's message, the field it names, Retry-After).
let csrfToken = null

export function setCsrfToken (token) { csrfToken = token }

export class ApiError extends Error {
  constructor (status, message, retryAfterS) {
    super(message)
    this.status = status
    this.retryAfterS = retryAfterS
    // validation messages read "body/category must …": the field they are about
    const m = /^body\/(\w+) (.*)$/.exec(message)
    this.field = m ? m[1] : null
    this.fieldMessage = m ? m[2] : null
  }
}

/** Retry-After in seconds: a number of seconds or an HTTP date (RFC 9110 allows both). */
function retryAfterOf (res) {
  const value = res.headers.get('retry-after')
  if (value === null) return null
  if (/^\d+$/.test(value.trim())) return Number(value)
  const at = Date.parse(value)
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000))
}

export async function api (method, path, body) {
  const headers = { accept: 'application/json' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken
  let res
  try {
    res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) })
  } catch {
    throw new ApiError(0, 'the server could not be reached', null)
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null)
  if (!res.ok) throw new ApiError(res.status, (data && data.message) || `${res.status} ${res.statusText}`, retryAfterOf(res))
  return data
}

function when (seconds) {
  const at = new Date(Date.now() + seconds * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })
  return seconds <= 1 ? 'in a second' : `in ${seconds} seconds (at ${at})`
}

/**
 * An error in words a user can act on: a 429 or 503 says what happened and
 * when to try again, from Retry-After; anything else is the API's own message.
 */
export function explain (err) {
  const wait = err.retryAfterS
  if (err.status === 429) {
    return `Too many requests: the server limits how often this can be done (${err.message}). ` +
      (wait !== null ? `Try again ${when(wait)}.` : 'Wait a little before trying again.')
  }
  if (err.status === 503) {
    return `The service is busy or briefly unavailable (${err.message}). ` +
      (wait !== null ? `Try again ${when(wait)}.` : 'Try again in a few seconds.')
  }
  if (err.status === 0) return 'The server could not be reached: check your connection and try again.'
  return err.message
}
