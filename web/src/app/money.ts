// Money as people read it: the currency's own symbol and decimals ("US$0.00", "12.500 ₫"), with
// more decimals only when a price really has them (WhatsApp prices fractions of a cent): never
// "0.000000 USD".

/** `amount` is the server's decimal string (e.g. "0.000000", "0.0250"); `currency` ISO 4217. */
export function formatMoney(amount: string | number, currency: string, locale: string): string {
  const value = typeof amount === 'number' ? amount : Number(amount);
  if (!Number.isFinite(value)) return `${amount} ${currency}`;
  let standard = 2;
  try {
    standard = new Intl.NumberFormat(locale, { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return `${value} ${currency}`;
  }
  // Decimals the amount needs beyond the currency's own (at most 4 more), trailing zeros dropped.
  const text = typeof amount === 'string' ? amount : String(amount);
  const frac = (text.split('.')[1] ?? '').replace(/0+$/, '');
  const digits = Math.min(Math.max(standard, frac.length), standard + 4);
  return new Intl.NumberFormat(locale, { style: 'currency', currency, minimumFractionDigits: standard, maximumFractionDigits: digits }).format(value);
}
