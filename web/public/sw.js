// Switchboard's service worker: keeps the app's shell (the page, its scripts and styles, icons)
// so the installed app opens without a network and says it is offline, instead of the browser's
// error page. It never caches the API, the live connection, files or the widget.
const SHELL = 'switchboard-shell-v1';
const FIXED = ['/', '/manifest.webmanifest', '/icons/icon-192.png', '/icons/icon-512.png'];

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
