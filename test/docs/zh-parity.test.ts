// The Chinese operator docs (README.zh-CN.md, docs/zh/) against their English originals: the same
// heading structure (count and levels, in order) and byte-identical fenced code blocks, so a command
// changed in English and not in Chinese fails here. Prose is not compared: that is a translator's job.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';

const root = new URL('../..', import.meta.url).pathname;

/** English doc → its Chinese counterpart. Every English doc named here must have one. */
const REQUIRED = [
  'README.md',
  'docs/configuration.md',
  'docs/operations.md',
  'docs/kubernetes.md',
  'docs/gateway.md',
  'docs/inference.md',
  'docs/edge.md',
  'docs/v2x.md',
  'docs/gm.md',
  'docs/audit.md',
  'docs/control.md',
  'docs/jobs.md',
  'docs/saga.md',
  'docs/events.md',
  'docs/api.md',
  'docs/operator.md',
  'docs/release.md',
];
const zhOf = (en: string) => (en === 'README.md' ? 'README.zh-CN.md' : en.replace(/^docs\//, 'docs/zh/'));
const GLOSSARY = 'docs/zh/glossary.md';

interface Parsed {
  headings: number[];
  /** Inline code spans outside fences (a span may wrap across the lines of one paragraph). */
  spans: Set<string>;
  /** GitHub's anchor of each heading (`## Quick start` → `quick-start`, `## 快速开始` → `快速开始`). */
  anchors: Set<string>;
  blocks: string[];
  links: string[];
}

/** Heading levels and fenced blocks (fence lines included), ignoring `#` lines inside fences. */
function parse(text: string): Parsed {
  const headings: number[] = [];
  const anchors = new Set<string>();
  const blocks: string[] = [];
  const links: string[] = [];
  let fence: string | null = null;
  let block: string[] = [];
  const prose: string[] = [];
  for (const line of text.split('\n')) {
    prose.push(fence === null && !/^(`{3,}|~{3,})/.test(line) ? line : '');
    if (fence === null) {
      const open = /^(`{3,}|~{3,})/.exec(line);
      if (open) {
        fence = open[1] as string;
        block = [line];
        continue;
      }
      const h = /^(#{1,6}) (\S.*)$/.exec(line);
      if (h) {
        headings.push((h[1] as string).length);
        const base = slug(h[2] as string);
        let anchor = base;
        for (let n = 1; anchors.has(anchor); n++) anchor = `${base}-${n}`;
        anchors.add(anchor);
      }
      for (const m of line.matchAll(/\]\(([^)\s]+)\)/g)) links.push(m[1] as string);
    } else {
      block.push(line);
      if (line.trim() === fence) {
        blocks.push(block.join('\n'));
        fence = null;
      }
    }
  }
  assert.equal(fence, null, 'a fenced block is never closed');
  const spans = new Set<string>();
  for (const paragraph of prose.join('\n').split(/\n\s*\n/)) {
    for (const m of paragraph.replace(/\s*\n\s*/g, ' ').matchAll(/`([^`]+)`/g))
      spans.add((m[1] as string).trim());
  }
  return { headings, spans, anchors, blocks, links };
}

/** GitHub's heading slug: lower case, punctuation (ASCII and CJK alike) dropped, spaces to `-`. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

const read = (p: string) => readFileSync(join(root, p), 'utf8');

describe('Chinese docs (README.zh-CN.md, docs/zh/)', () => {
  it('cover every required English doc, and each English doc with a counterpart links to it', () => {
    const missing = REQUIRED.filter((en) => !existsSync(join(root, zhOf(en))));
    assert.deepEqual(missing, [], `no Chinese version of: ${missing.join(', ')}`);
    const zhDir = readdirSync(join(root, 'docs/zh')).filter((f) => f.endsWith('.md'));
    for (const f of zhDir) {
      if (`docs/zh/${f}` === GLOSSARY) continue;
      assert.ok(existsSync(join(root, 'docs', f)), `docs/zh/${f} has no English original docs/${f}`);
    }
    for (const en of REQUIRED) {
      const target = en === 'README.md' ? 'README.zh-CN.md' : `zh/${en.slice('docs/'.length)}`;
      assert.ok(read(en).includes(`](${target})`), `${en} does not link to its Chinese version ${target}`);
    }
  });

  for (const en of REQUIRED) {
    const zh = zhOf(en);
    it(`${zh}: same headings, identical code blocks and inline code as ${en}`, () => {
      assert.ok(existsSync(join(root, zh)), `${zh} is missing`);
      const a = parse(read(en));
      const b = parse(read(zh));
      assert.deepEqual(b.headings, a.headings, `${zh}: heading levels differ from ${en}`);
      assert.equal(
        b.blocks.length,
        a.blocks.length,
        `${zh}: ${b.blocks.length} code blocks, ${en} has ${a.blocks.length}`,
      );
      a.blocks.forEach((block, i) => {
        assert.equal(b.blocks[i], block, `${zh}: code block ${i + 1} differs from ${en}'s`);
      });
      // Keys, commands, codes and paths written inline in the English prose and tables are kept
      // verbatim in the Chinese text (it may add its own).
      const missing = [...a.spans].filter((span) => !b.spans.has(span));
      assert.deepEqual(missing, [], `${zh}: inline code of ${en} not found in the translation`);
    });
  }

  it('relative links in the Chinese docs resolve to files that exist, and #anchors to headings in them', () => {
    const broken: string[] = [];
    for (const zh of [...REQUIRED.map(zhOf), GLOSSARY]) {
      if (!existsSync(join(root, zh))) continue;
      for (const link of parse(read(zh)).links) {
        if (/^[a-z]+:/.test(link)) continue;
        const [path, anchor] = link.split('#') as [string, string | undefined];
        const target = path === '' ? join(root, zh) : resolve(join(root, dirname(zh)), path);
        if (!existsSync(target)) broken.push(`${zh}: ${link} (no such file)`);
        else if (anchor !== undefined && target.endsWith('.md')) {
          const anchors = parse(readFileSync(target, 'utf8')).anchors;
          if (!anchors.has(decodeURIComponent(anchor))) broken.push(`${zh}: ${link} (no such heading)`);
        }
      }
    }
    assert.deepEqual(broken, []);
  });

  it('the checks catch a changed command, a dropped heading and a translated anchor that no heading has', () => {
    const en = '# Doc\n\n## Quick start\n\n```sh\nnpm start\n```\n';
    const zh = '# 文档\n\n```sh\nnpm run start\n```\n';
    assert.notDeepEqual(parse(zh).headings, parse(en).headings);
    assert.notEqual(parse(zh).blocks[0], parse(en).blocks[0]);
    assert.ok(parse(en).anchors.has('quick-start'));
    assert.ok(parse('## 设备身份（`gm.enabled: true`）').anchors.has('设备身份gmenabled-true'));
    assert.ok(!parse(zh).anchors.has('快速开始'));
    // A `#` line inside a fence is code, not a heading.
    assert.deepEqual(parse('```sh\n# comment\n```\n').headings, []);
    assert.ok(
      parse('set `gateway.providers[].apiKeyEnv`\nor `KAPOK_STORE__URL` and `kapok\nkeys create`').spans.has(
        'kapok keys create',
      ),
    );
  });

  it('a glossary fixes the terms 国密, 信创 and 等保, and the docs use them, not variants', () => {
    const glossary = read(GLOSSARY);
    for (const term of ['国密', '信创', '等保']) assert.ok(glossary.includes(term), `glossary lacks ${term}`);
    // The long forms and variants the glossary explains once, kept out of the docs themselves.
    const variants = [/国产密码/, /等级保护/, /信息技术应用创新/];
    for (const zh of REQUIRED.map(zhOf)) {
      if (!existsSync(join(root, zh))) continue;
      const text = read(zh);
      for (const v of variants)
        assert.doesNotMatch(text, v, `${zh} uses ${v.source}; the glossary's term instead`);
    }
  });
});
