/**
 * comlink speaks the DOM MessagePort interface (addEventListener, event.data); Node's
 * worker_threads ports emit the data itself through EventEmitter `on('message')`. This adapts
 * one to the other, both for a Worker (main side) and for parentPort (worker side).
 */
import type { Endpoint } from 'comlink';

interface NodePort {
  postMessage(message: unknown, transfer?: readonly unknown[]): void;
  on(event: 'message', listener: (data: unknown) => void): unknown;
  off(event: 'message', listener: (data: unknown) => void): unknown;
  start?: () => void;
}

type Listener = EventListenerOrEventListenerObject;

export function nodeEndpoint(port: NodePort): Endpoint {
  const wrapped = new WeakMap<Listener, (data: unknown) => void>();
  return {
    postMessage(message: unknown, transfer?: Transferable[]): void {
      port.postMessage(message, transfer as unknown as readonly unknown[]);
    },
    addEventListener(_type: string, listener: Listener): void {
      const fn = (data: unknown): void => {
        const event = { data } as MessageEvent;
        if (typeof listener === 'function') listener(event);
        else listener.handleEvent(event);
      };
      wrapped.set(listener, fn);
      port.on('message', fn);
    },
    removeEventListener(_type: string, listener: Listener): void {
      const fn = wrapped.get(listener);
      if (fn) {
        port.off('message', fn);
        wrapped.delete(listener);
      }
    },
    start: port.start?.bind(port),
  };
}
