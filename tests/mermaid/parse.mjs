// Reads Mermaid diagrams separated by NUL bytes on stdin; prints one JSON line per diagram:
// {"ok": true, "type": ...} or {"ok": false, "error": ...}. Mermaid needs a DOM to load: jsdom gives one.
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');

let input = '';
for await (const chunk of process.stdin) input += chunk;
for (const text of input.split('\0').filter((part) => part.trim())) {
  try {
    const parsed = await mermaid.parse(text);
    console.log(JSON.stringify({ ok: true, type: parsed.diagramType }));
  } catch (error) {
    console.log(JSON.stringify({ ok: false, error: String(error.message || error) }));
  }
}
