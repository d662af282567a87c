import createError from '@fastify/error'

export const EmailTaken = createError('FINANCE_EMAIL_TAKEN', 'an account with this email already exists', 409)
export const BadCredentials = createError('FINANCE_BAD_CREDENTIALS', 'email or password is wrong', 401)
export const Unauthenticated = createError('FINANCE_UNAUTHENTICATED', 'log in first', 401)
export const CsrfRejected = createError('FINANCE_CSRF', 'missing or wrong x-csrf-token header: read it from the login response or GET /api/auth/me', 403)
export const AccountNotFound = createError('FINANCE_ACCOUNT_NOT_FOUND', 'account %s does not exist or is not yours', 404)
export const BadCursor = createError('FINANCE_BAD_CURSOR', 'cursor is not one this API returned', 400)
export const NoSymbols = createError('FINANCE_NO_SYMBOLS', 'symbols names no symbol: omit it for the default five, or list some, e.g. ?symbols=AAPL,MSFT', 400)
export const UnknownSymbol = createError('FINANCE_UNKNOWN_SYMBOL', 'unknown symbol %s; known: %s', 400)
export const QuotesUnavailable = createError('FINANCE_QUOTES_UNAVAILABLE', 'market data is unavailable and no recent quote is cached; retry shortly', 503)
export const LoginThrottled = createError<[string, number]>('FINANCE_LOGIN_THROTTLED', 'too many failed attempts %s; retry in %d s', 429)
export const SignupThrottled = createError<[number]>('FINANCE_SIGNUP_THROTTLED', 'too many signups from this network; retry in %d s', 429)
export const HashingBusy = createError('FINANCE_BUSY', 'too many logins and signups in progress on this instance; retry in a second', 503)
