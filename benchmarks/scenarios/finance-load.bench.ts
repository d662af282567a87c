import { defineScenario } from '@headroom/benchmarks'
import { runFinanceLoad } from 'finance-api/bench/load'

/**
 * The example app end to end: real PostgreSQL and Redis, logged-in virtual
 * users on a realistic mix. Writes benchmarks/results/finance-load.md + .svg.
 */
export default defineScenario({
  kind: 'custom',
  name: 'finance-load',
  description: 'examples/finance-api on real PostgreSQL + Redis: seeded users, logged-in virtual users, a mix of summary / transaction reads, quotes, insights, static files and ~5% writes.',
  run: (ctx) => runFinanceLoad(ctx)
})
