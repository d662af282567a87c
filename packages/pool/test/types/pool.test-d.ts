// Type tests: see packages/session/test/types/session.test-d.ts.
import Fastify from 'fastify'
import { expectTypeOf } from 'expect-type'
import headroomPool, { type Db, type DbSession, type ConsistencyToken, type Transaction } from '@headroom/pool'
import type { QueryResult } from 'pg'

const app = Fastify()
await app.register(headroomPool, { primary: 'postgres://localhost/test', replicas: ['postgres://replica/test'], max: 25, sessionKey: false })

expectTypeOf(app.db).toEqualTypeOf<Db>()
expectTypeOf(app.db.read<{ id: number }>).returns.toEqualTypeOf<Promise<QueryResult<{ id: number }>>>()

app.get('/', async (request) => {
  expectTypeOf(request.db).toEqualTypeOf<DbSession>()
  expectTypeOf(request.db.consistencyToken).toEqualTypeOf<ConsistencyToken | undefined>()
  const n = await request.db.transaction(async (tx) => {
    expectTypeOf(tx).toEqualTypeOf<Transaction>()
    const { rows } = await tx.query<{ n: number }>('SELECT 1 AS n')
    return rows[0]?.n
  })
  expectTypeOf(n).toEqualTypeOf<number | undefined>()
  return null
})

// @ts-expect-error max is a number
await app.register(headroomPool, { max: '25' })
// @ts-expect-error replicas is an array
await app.register(headroomPool, { replicas: 'postgres://replica/test' })
// @ts-expect-error sessionKey is a string or false
await app.register(headroomPool, { sessionKey: true })
// @ts-expect-error an unknown option is a compile error too
await app.register(headroomPool, { maxx: 25 })
