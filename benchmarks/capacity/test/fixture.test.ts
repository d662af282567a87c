import t from 'tap'
import { verifyPassword } from '../../../examples/finance-api/src/passwords.js'
import { SEED_PASSWORD } from '../../../examples/finance-api/src/seed.js'
import { cheapSeedHash } from '../fixture.js'

t.test('the capacity fixture\'s cheaper seed hash still logs the virtual users in, and only with the seed password', async (t) => {
  const hash = cheapSeedHash()
  t.match(hash, /^scrypt\$1024\$8\$1\$/)
  t.equal(await verifyPassword(SEED_PASSWORD, hash), true)
  t.equal(await verifyPassword('not-the-seed-password', hash), false)
})
