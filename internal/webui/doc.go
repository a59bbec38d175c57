// Package webui serves tlstap's web interface: a single page, embedded in
// the binary, that lists live and retained traffic as exchanges (a request
// paired with its response, one row per HTTP/2 stream, one row per
// WebSocket connection with its messages inside), filters it with the
// filter language of docs/filters.md, shows a detail pane and exports HAR.
//
// The page is served at / on the main listener, over its TLS. It carries
// no secret: tlstap prints a URL whose fragment holds the token
// (https://127.0.0.1:28256/#token=...), so the token never reaches a log or
// a Referer; without one the page asks for it. Every call the page makes
// (the /ws stream, /api/v1/status, /api/v1/config, /api/v1/har) presents
// it, as "Authorization: Bearer" for fetches and ?token= for the
// WebSocket, which a browser cannot give headers.
//
// Assets are plain files under assets/ (no build step, no CDN) and are
// served with a Content-Security-Policy that allows scripts, styles and
// connections to the page's own origin only, no inline script, and no
// framing. The page knows nothing of the capture source: it reads the
// stream and the API, so it works for tls, replay and demo alike.
//
// assets/filter.js implements docs/filters.md in JavaScript; it is tested
// with node (filter_test.mjs, run by TestFilterJS) and in Chromium.
package webui
