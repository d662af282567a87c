/**
 * request.session: @fastify/session's Session and Cookie (MIT, fastify/session
 * 11.1.3, lib/session.js and lib/cookie.js), with its API and behaviour, made
 * cheap for a read that changes nothing. @fastify/session computes a SHA-256
 * of the whole session when it builds the object and again in `isModified()`,
 * builds a Cookie (two Dates, three object spreads) on every request, and
 * signs the id again; here `isModified()` compares the session's fields with
 * the JSON the request read (what the store writes anyway), the Cookie is
 * built on first use, and the id's signature is the cookie the request sent.
 *
 * Copyright (c) 2017-2020 Denis Fäcke; (c) 2021-present The Fastify team (MIT:
 * the notice is in this package's LICENSE).
 */
import type { FastifyRequest } from 'fastify'
import { encode, type Fields } from './codec.js'
import { kSnapshot } from './store.js'

type Callback = (err?: Error | null) => void

/** the store contract this object talks to (HeadroomStore) */
export interface SessionStore {
  get (id: string, callback: (err: (Error & { code?: string }) | null | undefined, session?: unknown) => void): void
  set (id: string, session: object, callback: Callback): void
  destroy (id: string, callback: Callback): void
}

export interface Signer {
  sign (value: string): string
}

/** cookie attributes as configured, plus what a restored session carried */
export interface CookieInit {
  path?: string
  domain?: string
  sameSite?: boolean | 'lax' | 'strict' | 'none'
  secure?: boolean | 'auto'
  httpOnly?: boolean
  partitioned?: boolean
  maxAge?: number
  expires?: Date | string | number | null
  originalMaxAge?: number | null
  originalExpires?: Date
}

/** @fastify/session's Cookie, unchanged in behaviour (maxAge and expires derive from each other) */
export class Cookie {
  path: string
  secure: boolean | 'auto' | null
  sameSite: CookieInit['sameSite'] | null
  domain: string | null
  httpOnly: boolean
  partitioned: boolean | undefined
  originalMaxAge: number | null = null
  originalExpires?: Date
  _expires: Date | null = null

  constructor (cookie: CookieInit, request: FastifyRequest) {
    const originalMaxAge = cookie.originalMaxAge ?? cookie.maxAge ?? null
    this.path = cookie.path ?? '/'
    this.secure = cookie.secure ?? null
    this.sameSite = cookie.sameSite ?? null
    this.domain = cookie.domain ?? null
    this.httpOnly = cookie.httpOnly ?? true
    this.partitioned = cookie.partitioned
    if (cookie.expires) this.originalExpires = new Date(cookie.expires)
    if (originalMaxAge) {
      this.maxAge = originalMaxAge
    } else if (cookie.expires) {
      this.expires = new Date(cookie.expires)
      this.originalMaxAge = null
    }
    if (this.secure === 'auto') {
      if (request.protocol === 'https') {
        this.secure = true
      } else {
        this.sameSite = 'lax'
        this.secure = false
      }
    }
  }

  set expires (date: Date | null) {
    this._expires = date
  }

  get expires (): Date | null {
    return this._expires
  }

  set maxAge (ms: number) {
    this.expires = new Date(Date.now() + ms)
    this.originalMaxAge = ms
  }

  get maxAge (): number | null {
    return this._expires instanceof Date ? this._expires.valueOf() - Date.now() : null
  }

  toJSON () {
    return {
      expires: this._expires,
      originalMaxAge: this.originalMaxAge,
      originalExpires: this.originalExpires,
      sameSite: this.sameSite,
      secure: this.secure,
      path: this.path,
      httpOnly: this.httpOnly,
      domain: this.domain,
      partitioned: this.partitioned
    }
  }
}

/** what every session of one plugin instance shares */
export interface SessionContext {
  store: SessionStore
  signer: Signer
  newId: () => string
  /** the configured attributes (`maxAge` included); never mutated */
  cookie: CookieInit
}

const kContext = Symbol('headroom.session.context')
const kRequest = Symbol('headroom.session.request')
const kCookieOpts = Symbol('headroom.session.cookieOpts')
const kCookieInit = Symbol('headroom.session.cookieInit')
const kCookie = Symbol('headroom.session.cookie')
const kId = Symbol('headroom.session.id')
const kSigned = Symbol('headroom.session.signed')
const kSaved = Symbol('headroom.session.saved')
/** the fields as last read or saved: `isModified()` compares with them */
const kPersisted = Symbol('headroom.session.persisted')
/** set on a session read from the store: its expiry (ms) when the request started */
export const kLoadedExpiry = Symbol('headroom.session.loadedExpiry')

/** a session read from the store: its data, and `cookie` as the store returns it */
type Stored = Record<string, unknown> & { cookie?: { originalMaxAge?: number | null, expires?: Date | string | number | null } }

/** the same fields: `a` has `bSize` keys, each equal to b's */
function sameFields (a: Fields, b: Fields, bSize: number): boolean {
  let n = 0
  for (const key in a) {
    if (a[key] !== b[key]) return false
    n++
  }
  return n === bSize
}

function persisted (fields: Fields): { fields: Fields, size: number } {
  return { fields, size: Object.keys(fields).length }
}

export class Session {
  [key: string]: unknown
  declare [kContext]: SessionContext
  declare [kRequest]: FastifyRequest
  declare [kCookieOpts]: CookieInit
  declare [kCookieInit]: CookieInit | null
  declare [kCookie]: Cookie | null
  declare [kId]: string
  declare [kSigned]: string
  declare [kSaved]: boolean
  declare [kPersisted]: { fields: Fields, size: number }
  declare [kLoadedExpiry]: number | undefined

  /**
   * A new session (no `stored`), or one read from the store under `id`.
   * `signed` is the id's signature when the caller has it (the cookie it verified).
   */
  constructor (context: SessionContext, request: FastifyRequest, cookieOpts: CookieInit, stored?: Stored | null, id?: string, signed?: string) {
    this[kContext] = context
    this[kRequest] = request
    this[kCookieOpts] = cookieOpts
    this[kCookie] = null
    this[kId] = id ?? context.newId()
    this[kSigned] = signed ?? context.signer.sign(this[kId])
    this[kSaved] = false
    this[kLoadedExpiry] = undefined
    const previous = stored?.cookie
    if (previous) {
      // as @fastify/session: the stored maxAge and expiry over the configured attributes
      this[kCookieInit] = { ...cookieOpts, ...(typeof (previous as { toJSON?: unknown }).toJSON === 'function' ? (previous as unknown as Cookie).toJSON() : previous) } as CookieInit
      const expires = previous.expires
      if (expires instanceof Date) this[kLoadedExpiry] = expires.getTime()
      else if (expires !== undefined && expires !== null) this[kLoadedExpiry] = new Date(expires).getTime()
    } else {
      this[kCookieInit] = cookieOpts
    }
    if (stored) {
      for (const key in stored) {
        if (key !== 'cookie' && key !== 'sessionId' && key !== 'encryptedSessionId') this[key] = stored[key]
      }
    }
    const fields = encode(this)
    this[kPersisted] = persisted(fields)
    // what the store's save diffs against: only the fields this request changes are written
    if (stored) (this as Record<symbol, unknown>)[kSnapshot] = fields
  }

  /** built on first use: a read that never looks at its cookie never builds it */
  get cookie (): Cookie {
    let cookie = this[kCookie]
    if (cookie === null) {
      cookie = this[kCookie] = new Cookie(this[kCookieInit] ?? this[kCookieOpts], this[kRequest])
      this[kCookieInit] = null
    }
    return cookie
  }

  set cookie (cookie: Cookie) {
    this[kCookie] = cookie
    this[kCookieInit] = null
  }

  /** what `cookie.secure` is, without building the Cookie */
  get secureCookie (): boolean | null {
    const cookie = this[kCookie]
    if (cookie !== null) return cookie.secure === 'auto' ? null : cookie.secure
    const secure = (this[kCookieInit] ?? this[kCookieOpts]).secure
    if (secure === 'auto') return this[kRequest].protocol === 'https'
    return secure ?? null
  }

  options (opts: CookieInit): void {
    if (Object.keys(opts).length > 0) {
      this[kCookieOpts] = { ...this[kCookieOpts], ...opts }
      this.cookie = new Cookie(this[kCookieOpts], this[kRequest])
    }
  }

  touch (): void {
    const cookie = this.cookie
    if (cookie.originalMaxAge) cookie.expires = new Date(Date.now() + cookie.originalMaxAge)
  }

  regenerate (callback: Callback): void
  regenerate (keys: string[], callback: Callback): void
  regenerate (keys?: string[]): Promise<void>
  regenerate (keys?: string[] | Callback, callback?: Callback): Promise<void> | undefined {
    if (typeof keys === 'function') {
      callback = keys
      keys = undefined
    }
    const context = this[kContext]
    const session = new Session(context, this[kRequest], this[kCookieOpts])
    if (Array.isArray(keys)) for (const key of keys) session[key] = this[key]
    const run = (cb: Callback) => {
      context.store.destroy(this[kId], (destroyError) => {
        context.store.set(session[kId], session, (setError) => {
          ;(this[kRequest] as { session: unknown }).session = session
          cb(destroyError ?? setError)
        })
      })
    }
    return settle(run, callback)
  }

  get (key: string): unknown {
    return this[key]
  }

  set (key: string, value: unknown): void {
    this[key] = value
  }

  destroy (callback?: Callback): Promise<void> | undefined {
    return settle((cb) => {
      this[kContext].store.destroy(this[kId], (error) => {
        ;(this[kRequest] as { session: unknown }).session = null
        cb(error)
      })
    }, callback)
  }

  reload (callback?: Callback): Promise<void> | undefined {
    const context = this[kContext]
    return settle((cb) => {
      context.store.get(this[kId], (error, stored) => {
        ;(this[kRequest] as { session: unknown }).session = new Session(context, this[kRequest], this[kCookieOpts], stored as Stored | null, this[kId], this[kSigned])
        cb(error)
      })
    }, callback)
  }

  save (callback?: Callback): Promise<void> | undefined {
    return settle((cb) => {
      this[kContext].store.set(this[kId], this, (error) => {
        if (!error) {
          this[kSaved] = true
          this[kPersisted] = persisted(encode(this))
        }
        cb(error)
      })
    }, callback)
  }

  get sessionId (): string {
    return this[kId]
  }

  get encryptedSessionId (): string {
    return this[kSigned]
  }

  isModified (): boolean {
    const { fields, size } = this[kPersisted]
    return !sameFields(encode(this), fields, size)
  }

  isSaved (): boolean {
    return this[kSaved]
  }
}

function settle (run: (cb: Callback) => void, callback: Callback | undefined): Promise<void> | undefined {
  if (callback) {
    run(callback)
    return undefined
  }
  return new Promise((resolve, reject) => run((err) => { if (err) reject(err); else resolve() }))
}
