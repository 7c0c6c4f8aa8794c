// Service worker of the night-staff board (served as /sw.js, scope /): shows Web Push
// alerts on a locked phone and opens the alert on the board when the nurse taps it. The
// message arrives encrypted for this phone; its text is already in the site's language.
"use strict";
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let d = {};
  try { d = event.data ? event.data.json() : {}; } catch (e) { d = {title: "Tillsyn"}; }
  const options = {
    body: d.body || "", tag: d.tag || "tillsyn", renotify: true,
    requireInteraction: d.priority === 1, icon: "/static/icons/icon-192.png",
    badge: "/static/icons/icon-192.png", vibrate: [300, 100, 300],
    data: {url: d.url || "/", alert_id: d.alert_id},
    actions: d.ack ? [{action: "ack", title: d.ack}] : [],
  };
  event.waitUntil(self.registration.showNotification(d.title || "Tillsyn", options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const base = (event.notification.data && event.notification.data.url) || "/";
  const url = event.action === "ack" ? base + (base.includes("?") ? "&" : "?") + "ack=1" : base;
  event.waitUntil(self.clients.matchAll({type: "window", includeUncontrolled: true}).then((list) => {
    for (const c of list) {
      if (new URL(c.url).pathname === "/" && "navigate" in c) return c.navigate(url).then((w) => (w || c).focus());
    }
    return self.clients.openWindow(url);
  }));
});
