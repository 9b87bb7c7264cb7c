// The agent's own notification choices (kept on the server, for every device): sound on/off,
// which kinds of new work notify, and the browser's permission for notifications (asked from the click on "Allow", as browsers require).

import { useEffect, useRef, useState } from 'preact/hooks';
import { t } from './i18n';
import { askPermission, Kind, KINDS, notificationsSupported, playSound, prefs, savePrefs, useCounts } from './notify';
import { pushState, PushState, turnOffPush, turnOnPush } from './webpush';

export function SoundToggle() {
  useCounts(); // re-render when preferences change
  const on = prefs().sound;
  const label = on ? t('settings.mute') : t('settings.unmute');
  return (
    <button class="icon sound-toggle" aria-pressed={!on} aria-label={label} title={label} data-testid="sound-toggle" onClick={() => savePrefs({ ...prefs(), sound: !on }).catch(() => undefined)}>
      {on ? <Bell /> : <BellOff />}
    </button>
  );
}

export function NotificationSettings({ onClose }: { onClose: () => void }) {
  useCounts();
  const p = prefs();
  const [saveError, setSaveError] = useState('');
  const save = (next: typeof p) => {
    setSaveError('');
    savePrefs(next).catch(() => setSaveError(t('settings.save_failed')));
  };
  const [permission, setPermission] = useState<NotificationPermission | 'unsupported'>(notificationsSupported() ? Notification.permission : 'unsupported');
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => {
    first.current?.focus();
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && onClose();
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  const kindLabel: Record<Kind, string> = {
    assigned: t('settings.kind.assigned'),
    transferred: t('settings.kind.transferred'),
    waiting: t('settings.kind.waiting'),
    answered: t('settings.kind.answered'),
  };
  return (
    <div class="modal-back" onClick={(e) => e.target === e.currentTarget && onClose()}>
      <div class="modal" role="dialog" aria-modal="true" aria-labelledby="settings-title" data-testid="settings-dialog">
        <h2 id="settings-title">{t('settings.notifications')}</h2>
        <label class="check">
          <input ref={first} type="checkbox" checked={p.sound} onChange={(e) => save({ ...p, sound: e.currentTarget.checked })} data-testid="pref-sound" />
          {t('settings.sound')}
        </label>
        <button class="small-inline" onClick={() => playSound('test')}>
          {t('settings.try_sound')}
        </button>
        <fieldset>
          <legend>{t('settings.kinds')}</legend>
          {KINDS.map((k) => (
            <label class="check" key={k}>
              <input type="checkbox" checked={p.kinds[k]} onChange={(e) => save({ ...p, kinds: { ...p.kinds, [k]: e.currentTarget.checked } })} data-testid={`pref-${k}`} />
              {kindLabel[k]}
            </label>
          ))}
        </fieldset>
        {saveError && (
          <p class="error" role="alert">
            {saveError}
          </p>
        )}
        <p class="hint" data-testid="permission">
          {permission === 'granted'
            ? t('settings.permission_granted')
            : permission === 'denied'
              ? t('settings.permission_denied')
              : permission === 'unsupported'
                ? t('settings.permission_unsupported')
                : t('settings.permission_ask')}
        </p>
        {permission === 'default' && (
          <button class="primary" onClick={async () => setPermission(await askPermission())} data-testid="allow-notifications">
            {t('settings.allow')}
          </button>
        )}
        <PushSection />
        <div class="row end">
          <button onClick={onClose} data-testid="settings-close">
            {t('settings.close')}
          </button>
        </div>
      </div>
    </div>
  );
}

/** Web Push: this device hears about new work even with Switchboard closed. */
function PushSection() {
  const [state, setState] = useState<PushState | null>(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    pushState().then(setState, () => setState('unsupported'));
  }, []);
  const toggle = async () => {
    setError('');
    setBusy(true);
    try {
      if (state === 'on') await turnOffPush();
      else await turnOnPush();
      setState(await pushState());
    } catch (e) {
      setError(t('settings.push_failed', { reason: e instanceof Error ? e.message : String(e) }));
    } finally {
      setBusy(false);
    }
  };
  if (state === null) return null;
  return (
    <fieldset data-testid="push">
      <legend>{t('settings.push_title')}</legend>
      <p class="hint" data-testid="push-state">
        {state === 'on' ? t('settings.push_on') : state === 'off' ? t('settings.push_off') : t('settings.push_unsupported')}
      </p>
      {state !== 'unsupported' && (
        <button onClick={toggle} disabled={busy} data-testid="push-toggle">
          {state === 'on' ? t('settings.push_disable') : t('settings.push_enable')}
        </button>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </fieldset>
  );
}

function Bell() {
  return (
    <svg width="20" height="20" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true">
      <path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9M13.7 21a2 2 0 0 1-3.4 0" />
    </svg>
  );
}

function BellOff() {
  return (
    <svg width="20" height="20" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true">
      <path d="M13.7 21a2 2 0 0 1-3.4 0M18.6 13A17 17 0 0 1 18 8M6.3 6.3A6 6 0 0 0 6 8c0 7-3 9-3 9h14M18 8a6 6 0 0 0-9.3-5M1 1l22 22" />
    </svg>
  );
}
