// The app's socket (docs/protocol.md, "Realtime"): every frame carries `seq`, one more than
// the last; a gap means frames were missed, so the app reconnects and the service sends the
// current state first, as on any connect. A socket the service cuts is reopened after a
// backoff; 4001 (the key was revoked or expired) and 4009 (replaced by a newer screen of the
// same account) are not, since reconnecting would be refused or would push the other screen out.

import { account, api } from "./common.js";

const CLOSE_REVOKED = 4001;
const CLOSE_REPLACED = 4009;
const CLOSE_TRY_LATER = 1013;

export class Live {
  constructor(role, handlers) {
    this.role = role;
    this.handlers = handlers;
    this.socket = null;
    this.expected = null;
    this.backoffS = 0.5;
    this.failures = 0;
    this.stopped = true;
    this.timer = null;
    this.connected = false;
    window.addEventListener("online", () => this.soon(0));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.soon(0);
    });
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    window.clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "bye");
    this.socket = null;
  }

  /** Sends a frame; false when the socket is not open (the caller keeps its newest data). */
  send(frame) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  soon(delayS) {
    if (this.stopped || (this.socket && this.socket.readyState <= WebSocket.OPEN)) return;
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => this.open(), delayS * 1000);
  }

  open() {
    if (this.stopped || !account.token) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/v1/ws/${this.role}?token=${encodeURIComponent(account.token)}`;
    const socket = new WebSocket(url);
    // The key this socket signed in with: "sign out everywhere" revokes it while the page already
    // holds its replacement, and that close must not sign the page out.
    socket.openedWith = account.token;
    this.socket = socket;
    this.expected = null;
    socket.onmessage = (event) => this.received(socket, event);
    socket.onclose = (event) => this.closed(socket, event);
  }

  received(socket, event) {
    let frame;
    try { frame = JSON.parse(event.data); } catch (error) { return; }
    if (typeof frame.seq === "number") {
      if (this.expected !== null && frame.seq !== this.expected) {
        // Frames were lost: the state that comes first on a new socket replaces what we had.
        socket.close(4000, "seq gap");
        return;
      }
      this.expected = frame.seq + 1;
    }
    if (frame.type === "hello") {
      this.failures = 0;
      this.backoffS = 0.5;
      this.connected = true;
      // How many sockets this page opened: a test (and a curious person) can see a resync.
      document.body.dataset.sockets = String(Number(document.body.dataset.sockets || 0) + 1);
      this.handlers.state("open");
    } else if (frame.type === "ping") {
      this.send({ type: "pong" });
      return;
    }
    this.handlers.frame(frame);
  }

  async closed(socket, event) {
    if (socket !== this.socket) return;
    this.socket = null;
    this.connected = false;
    if (this.stopped) return;
    if (event.code === CLOSE_REVOKED) {
      if (account.renewing) { this.soon(0.5); return; }
      if (account.token && account.token !== socket.openedWith) { this.soon(0); return; }
      this.handlers.signedOut();
      return;
    }
    if (event.code === CLOSE_REPLACED) { this.handlers.state("replaced"); return; }
    this.failures += 1;
    this.handlers.state("reconnecting");
    if (this.failures >= 2 && event.code === 1006) {
      // A refused handshake reads as 1006 in a browser: ask the API whether the key still works.
      try {
        await api("GET", this.role === "driver" ? "/v1/drivers/me" : "/v1/riders/me");
      } catch (problem) {
        if (problem.status === 401) { this.handlers.signedOut(); return; }
      }
    }
    const waitS = event.code === 4000 ? 0 : Math.max(this.backoffS, event.code === CLOSE_TRY_LATER ? 5 : 0);
    this.backoffS = Math.min(10, this.backoffS * 2);
    this.soon(waitS * (0.8 + Math.random() * 0.4));
  }
}
