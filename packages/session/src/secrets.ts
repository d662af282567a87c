/** the shortest secret accepted in production (256 bits of base64 is 43 characters) */
export const MIN_SECRET_LENGTH = 32

/** Values copied from READMEs and tutorials; refused in production whatever their length. */
export const SECRET_PLACEHOLDERS: readonly string[] = [
  'a secret with minimum length of 32 characters', 'minimum length of 32 characters',
  'changeme', 'change-me', 'change_me', 'change this', 'replace-me', 'keyboard cat', 'your-secret-key', 'your_secret_key', 'supersecret'
]

/**
 * Why `secret` is refused in production, or null: shorter than
 * MIN_SECRET_LENGTH, a documentation placeholder, or fewer than 8 distinct
 * characters. The one rule for `secret` (each of an array), exported so an
 * application's configuration check refuses exactly what the plugin would
 * refuse at start-up.
 */
export function secretWeakness (secret: string): string | null {
  if (secret.length < MIN_SECRET_LENGTH) return `a secret is ${secret.length} characters long, under ${MIN_SECRET_LENGTH}`
  const lower = secret.toLowerCase()
  if (SECRET_PLACEHOLDERS.some((p) => lower.includes(p))) return 'a secret is a documentation placeholder'
  if (new Set(secret).size < 8) return 'a secret repeats too few distinct characters to be random'
  return null
}
