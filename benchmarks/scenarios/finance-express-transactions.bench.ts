import { expressComparison } from 'finance-api/bench/express/scenario'

/** The example's transaction-list read against Express (examples/finance-api/bench/express/). */
export default expressComparison({
  name: 'finance-express-transactions',
  what: 'the example\'s transaction-list read',
  path: '/api/transactions?limit=20',
  checks: [{ variant: 'headroom', min: 0.55 }, { variant: 'headroom, cache bypassed', min: 0.55 }]
})
