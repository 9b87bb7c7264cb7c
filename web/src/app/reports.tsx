// Reports: WhatsApp usage and cost per month, per category, with the free tier applied.

import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, Usage } from './api';
import { errorText, lang, t } from './i18n';
import { formatMoney } from './money';
import { useShared } from './store';

function thisMonth(): string {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}`;
}

export function ReportsPage() {
  const s = useShared();
  const [month, setMonth] = useState(thisMonth());
  const [inbox, setInbox] = useState('');
  const [usage, setUsage] = useState<Usage | null>(null);
  const [error, setError] = useState('');
  const numbers = s.inboxes.filter((i) => i.channel === 'whatsapp');
  useEffect(() => {
    setError('');
    const q = new URLSearchParams({ month });
    if (inbox) q.set('inbox_id', inbox);
    api<Usage>('GET', `/reports/whatsapp-usage?${q}`)
      .then(setUsage)
      .catch((e) => {
        setUsage(null);
        if (e instanceof ApiError) setError(errorText(e.code, e.message));
      });
  }, [month, inbox]);
  const locale = lang() === 'vi' ? 'vi-VN' : 'en-US';
  const money = (x: string) => (usage ? formatMoney(x, usage.currency, locale) : x);
  const most = Math.max(1, ...(usage?.categories ?? []).map((c) => c.messages + c.conversations));
  return (
    <div class="admin" data-testid="reports">
      <h2>{t('report.whatsapp')}</h2>
      <div class="row">
        <label>
          {t('report.month')}
          <input type="month" value={month} onInput={(e) => e.currentTarget.value && setMonth(e.currentTarget.value)} data-testid="report-month" />
        </label>
        <label>
          {t('report.inbox')}
          <select value={inbox} onChange={(e) => setInbox(e.currentTarget.value)}>
            <option value="">{t('filter.all_inboxes')}</option>
            {numbers.map((i) => (
              <option value={i.id} key={i.id}>
                {i.name}
              </option>
            ))}
          </select>
        </label>
      </div>
      {error && <p class="error">{error}</p>}
      {usage && (
        <>
          <p>
            <b>{t('report.total')}:</b> <span data-testid="report-total">{money(usage.total_cost)}</span> · {t('report.windows')}: {usage.windows_opened} ·{' '}
            {t('report.model')}: {usage.models.join(', ') || '—'}
          </p>
          {usage.unpriced > 0 && <p class="error">{t('report.unpriced', { n: usage.unpriced })}</p>}
          <div class="report-bars" aria-hidden="true">
            {usage.categories.map((c) => (
              <div class="report-bar" key={c.category}>
                <span>{c.category}</span>
                <div class="track">
                  <div class="billable" style={{ width: `${(c.billable / most) * 100}%` }} title={t('report.billable')} />
                  <div class="free" style={{ width: `${(c.free / most) * 100}%` }} title={t('report.free')} />
                </div>
                <span>{money(c.cost)}</span>
              </div>
            ))}
          </div>
          <table>
            <thead>
              <tr>
                <th>{t('report.category')}</th>
                <th>{t('report.conversations')}</th>
                <th>{t('report.messages')}</th>
                <th>{t('report.billable')}</th>
                <th>{t('report.free')}</th>
                <th>{t('report.cost')}</th>
              </tr>
            </thead>
            <tbody>
              {usage.categories.map((c) => (
                <tr key={c.category}>
                  <td>{c.category}</td>
                  <td>{c.conversations}</td>
                  <td>{c.messages}</td>
                  <td>{c.billable}</td>
                  <td>{c.free}</td>
                  <td data-testid="report-cost">{money(c.cost)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}
