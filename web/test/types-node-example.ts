// A Node-style program against presence-client.d.ts: a WebSocket
// constructor passed in (here a minimal one; `ws` and the browser's
// `WebSocket` fit the same type), an absolute url, a token hook.

import { connect, type WebSocketConstructor, type WebSocketLike } from '../presence-client.js';

class LoopbackSocket implements WebSocketLike {
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  constructor(readonly url: string) {}
  send(_data: string): void {}
  close(code = 1000, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const Ctor: WebSocketConstructor = LoopbackSocket;
const browserCtor: WebSocketConstructor = WebSocket;

const bot = connect({
  url: 'ws://127.0.0.1:8080/ws',
  WebSocket: Ctor,
  token: 'header.payload.signature',
  onTokenExpiring: async ({ expiresAt, reason }) =>
    reason === 'unauthorized' || expiresAt ? 'fresh.jwt.token' : null,
  resumeKey: 'bot-1',
});
bot.on('open', ({ sessionId, resumed }) => console.log(sessionId, resumed));
bot.on('auth', ({ expiresAt }) => console.log(expiresAt, bot.expiresAt, bot.resumed));
bot.on('close', ({ replaced, unauthorized }) => console.log(replaced === true, unauthorized));
bot.on('error', (error) => {
  if (error.code === 'unauthorized' && !error.willRetry) console.log('sign in again', error.status);
});
if (bot.lastError?.code === 'forbidden') console.log(bot.lastError.message);
bot.close();
console.log(browserCtor);
