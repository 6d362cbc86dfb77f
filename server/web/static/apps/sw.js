// The app's service worker (prefixed by the server with APP, VERSION and SHELL: the shell's
// files). It keeps the shell only, so the app opens without the network and says so; it never
// stores an API answer (personal, and stale the moment it is stored) nor anything else.

const CACHE = `coop-${APP}-${VERSION}`;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names
        .filter((name) => name.startsWith(`coop-${APP}-`) && name !== CACHE)
        .map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname === `/${APP}`) {
    // The page from the network (its language, a new release); the kept shell when offline.
    event.respondWith(
      fetch(request)
        .then((response) => {
          if (response.ok) {
            const copy = response.clone();
            caches.open(CACHE).then((cache) => cache.put(`/${APP}`, copy));
          }
          return response;
        })
        .catch(() => caches.match(`/${APP}`, { ignoreVary: true })),
    );
    return;
  }
  if (SHELL.includes(url.pathname) && url.search === "") {
    event.respondWith(caches.match(url.pathname).then((kept) => kept || fetch(request)));
  }
  // Anything else (the API above all) goes to the network untouched.
});
