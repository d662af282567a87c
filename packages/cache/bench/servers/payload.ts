/** A portfolio summary of realistic size (about 1.5 KB of JSON), the same for both servers. */
export const payload = {
  user: 'u-1001',
  currency: 'USD',
  total: 125_430.55,
  change: { day: -0.42, week: 1.37, month: 3.9 },
  positions: Array.from({ length: 12 }, (_v, i) => ({
    symbol: `SYM${i}`,
    quantity: 10 + i,
    price: 100 + i * 3.25,
    value: (10 + i) * (100 + i * 3.25),
    weight: 1 / 12
  })),
  updatedAt: '2026-11-25T10:00:00.000Z'
}
