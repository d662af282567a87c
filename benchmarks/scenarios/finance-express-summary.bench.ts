import { expressComparison } from 'finance-api/bench/express/scenario'

/** The example's summary read against Express (examples/finance-api/bench/express/). */
export default expressComparison({
  name: 'finance-express-summary',
  what: 'the example\'s portfolio summary read',
  path: '/api/summary',
  checks: [{ variant: 'headroom', min: 3 }, { variant: 'headroom, cache bypassed', min: 1 }]
})
