// Web Push for this device: new work reaches the agent even with Switchboard closed. The browser
// subscribes with the server's VAPID key; the service worker shows the pushes in the agent's
// language, from strings the app leaves it (it has no translation table of its own).

import { api } from './api';
import { t } from './i18n';

/** Where the service worker looks for its strings (same cache as the app's shell). */
const STRINGS = '/__switchboard/push-strings';
const SHELL = 'switchboard-shell-v1';

export type PushState = 'on' | 'off' | 'unsupported';

export function pushSupported(): boolean {
  return window.isSecureContext && 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

export async function pushState(): Promise<PushState> {
  if (!pushSupported()) return 'unsupported';
  const reg = await navigator.serviceWorker.getRegistration();
  if (!reg) return 'unsupported';
  return (await reg.pushManager.getSubscription()) ? 'on' : 'off';
}

function keyBytes(b64url: string): Uint8Array<ArrayBuffer> {
  const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(new ArrayBuffer(raw.length));
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

/** Subscribes this browser and tells the server (call it from a click: it may ask permission). */
export async function turnOnPush(): Promise<void> {
  if ((await Notification.requestPermission()) !== 'granted') throw new Error(t('settings.permission_denied'));
  const reg = await navigator.serviceWorker.ready;
  const { public_key } = await api<{ public_key: string }>('GET', '/push/key');
  const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(public_key) });
  await leaveStringsForPush();
  await api('POST', '/me/push-subscriptions', sub.toJSON());
}

export async function turnOffPush(): Promise<void> {
  const reg = await navigator.serviceWorker.getRegistration();
  const sub = await reg?.pushManager.getSubscription();
  if (!sub) return;
  await api('DELETE', `/me/push-subscriptions?endpoint=${encodeURIComponent(sub.endpoint)}`).catch(() => undefined);
  await sub.unsubscribe();
}

/** The service worker's strings, in the app's current language. */
export async function leaveStringsForPush(): Promise<void> {
  if (!('caches' in window)) return;
  const strings = { assigned: t('notify.assigned'), transferred: t('notify.transferred'), someone: t('push.someone'), body: t('push.body') };
  const cache = await caches.open(SHELL);
  await cache.put(STRINGS, new Response(JSON.stringify(strings), { headers: { 'content-type': 'application/json' } }));
}
