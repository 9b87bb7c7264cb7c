// Switchboard's service worker: keeps the app's shell (the page, its scripts and styles, icons)
// so the installed app opens without a network and says it is offline, instead of the browser's
// error page. It never caches the API, the live connection, files or the widget. It also shows
// Web Push notifications (new work while the app is closed), worded in the agent's language with
// the strings the app left it (STRINGS).
const SHELL = 'switchboard-shell-v1';
const FIXED = ['/', '/manifest.webmanifest', '/icons/icon-192.png', '/icons/icon-512.png'];
const STRINGS = '/__switchboard/push-strings';

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(SHELL);
      await cache.addAll(FIXED);
      // The page names its hashed scripts and styles: keep those too.
      const html = await (await cache.match('/')).text();
      const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
      await cache.addAll(assets);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key !== SHELL) await caches.delete(key);
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin) return;
  if (/^\/(api|widget|webhooks)\//.test(url.pathname) || url.pathname === '/widget.js' || url.pathname === '/widget-preview') return;
  if (req.mode === 'navigate') {
    // The network first (a new version shows at once); the kept shell when there is none.
    event.respondWith(
      fetch(req)
        .then((resp) => {
          // Every app path answers with the same page: keep it as the shell.
          if (resp.ok && (resp.headers.get('content-type') ?? '').startsWith('text/html')) {
            const copy = resp.clone();
            caches.open(SHELL).then((c) => c.put('/', copy));
          }
          return resp;
        })
        .catch(async () => (await caches.match('/')) ?? Response.error()),
    );
    return;
  }
  if (url.pathname.startsWith('/assets/') || url.pathname.startsWith('/icons/')) {
    // Hashed names never change: the kept copy, else the network (and keep it).
    event.respondWith(
      caches.match(req).then(
        (hit) =>
          hit ??
          fetch(req).then((resp) => {
            if (resp.ok) {
              const copy = resp.clone();
              caches.open(SHELL).then((c) => c.put(req, copy));
            }
            return resp;
          }),
      ),
    );
  }
});

// A push from the server: {kind: "assigned" | "transferred", conversation_id, name}.
self.addEventListener('push', (event) => {
  event.waitUntil(
    (async () => {
      let data = {};
      try {
        data = event.data ? event.data.json() : {};
      } catch {
        data = {};
      }
      const kept = await (await caches.open(SHELL)).match(STRINGS);
      const strings = kept ? await kept.json() : {};
      const name = data.name || strings.someone || 'Switchboard';
      const template = strings[data.kind] || strings.assigned || '{name}';
      await self.registration.showNotification(template.split('{name}').join(name), {
        body: strings.body || '',
        tag: `${data.kind}-${data.conversation_id}`,
        icon: '/icons/icon-192.png',
        badge: '/icons/icon-192.png',
        data: { conversation_id: data.conversation_id },
      });
    })(),
  );
});

// A tap on the notification: the app's window (opened if none) with that conversation.
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const id = event.notification.data && event.notification.data.conversation_id;
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      const app = windows.find((w) => new URL(w.url).origin === self.location.origin);
      if (app) {
        await app.focus();
        if (id) app.postMessage({ type: 'open-conversation', conversation_id: id });
      } else {
        await self.clients.openWindow(id ? `/?conversation=${encodeURIComponent(id)}` : '/');
      }
    })(),
  );
});
