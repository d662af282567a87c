import t from 'tap'
import { SUMMARY_SQL as BENCH_SUMMARY_SQL } from '../../../packages/pool/bench/summary-data.js'
import { SUMMARY_SQL } from '../src/repo.js'

// @headroom/pool's prepared-statement benchmark runs a copy of the example's
// summary statement (the package cannot depend on the example): a copy that
// drifts measures a query the example no longer sends.
t.test('the pool benchmark runs the example\'s summary statement, verbatim', async (t) => {
  t.equal(BENCH_SUMMARY_SQL, SUMMARY_SQL, 'packages/pool/bench/summary-data.ts SUMMARY_SQL equals examples/finance-api/src/repo.ts SUMMARY_SQL')
})
