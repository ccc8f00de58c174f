/** RFC 8785 (JCS) known answers, and the values canonical JSON must refuse. */
import { describe, expect, it } from 'vitest';
import { MedledgerError } from '../errors.ts';
import { fromHex, toHex } from './bytes.ts';
import { canonicalBytes, canonicalJson, parseJson } from './canonical-json.ts';

function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof MedledgerError) return e.code;
    throw e;
  }
  return undefined;
}

/** The IEEE-754 double with the given bit pattern. */
function double(bitsHex: string): number {
  const view = new DataView(fromHex(bitsHex).buffer);
  return view.getFloat64(0);
}

describe('RFC 8785 §3.2.2–3.2.4: the sample object', () => {
  // The JSON text of §3.2.2, as sent on the wire.
  const input = String.raw`{
  "numbers": [333333333.33333329, 1E30, 4.50,
              2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`;

  it('canonicalises to the text of §3.2.3', () => {
    expect(canonicalJson(parseJson(input))).toBe(
      String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
    );
  });

  it('gives the UTF-8 bytes printed in §3.2.4', () => {
    // §3.2.4, as printed: the canonical text in UTF-8, byte by byte.
    const expected = [
      '7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c 2c 74 72 75 65 2c 66 61 6c 73 65 5d 2c 22 6e',
      '75 6d 62 65 72 73 22 3a 5b 33 33 33 33 33 33 33 33 33 2e 33 33 33 33 33 33 33 2c 31 65 2b 33 30',
      '2c 34 2e 35 2c 30 2e 30 30 32 2c 31 65 2d 32 37 5d 2c 22 73 74 72 69 6e 67 22 3a 22 e2 82 ac 24',
      '5c 75 30 30 30 66 5c 6e 41 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22 7d',
    ].join(' ');
    expect(toHex(canonicalBytes(parseJson(input)))).toBe(expected.replaceAll(' ', ''));
  });

  it('is idempotent', () => {
    const once = canonicalJson(parseJson(input));
    expect(canonicalJson(parseJson(once))).toBe(once);
  });
});

describe('RFC 8785 §3.2.3: property sorting by UTF-16 code units', () => {
  it('sorts the example keys as the RFC lists them', () => {
    const input = String.raw`{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`;
    const out = canonicalJson(parseJson(input));
    expect(out).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
    // The emoji (D83D DE00) sorts before U+FB33 although its code point is larger.
    expect(out.indexOf('\ud83d\ude00')).toBeLessThan(out.indexOf('\ufb33'));
  });

  it('sorts nested objects and keeps array order', () => {
    expect(canonicalJson({ b: { z: 1, a: [{ y: true, x: null }] }, a: 's', A: [3, 1, 2] })).toBe(
      '{"A":[3,1,2],"a":"s","b":{"a":[{"x":null,"y":true}],"z":1}}',
    );
  });

  it('does not depend on insertion order', () => {
    expect(canonicalJson({ a: 1, b: 2, c: 3 })).toBe(canonicalJson({ c: 3, b: 2, a: 1 }));
  });
});

describe('RFC 8785 §3.2.2.2: string serialisation', () => {
  it('escapes only what JSON requires, with lower-case \\u00xx', () => {
    expect(canonicalJson('\u0000\u001f\u007f\b\f\t\n\r"\\/<&>\u2028')).toBe('"\\u0000\\u001f\u007f\\b\\f\\t\\n\\r\\"\\\\/<&>\u2028"');
  });
});

describe('RFC 8785 Appendix B: number serialisation samples', () => {
  // IEEE-754 bit pattern → the ES6 Number serialisation JCS requires.
  const samples: readonly [string, string][] = [
    ['0000000000000000', '0'],
    ['8000000000000000', '0'], // minus zero
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'], // round to even
    // From the RFC's ES6 number test file (Appendix B references it).
    ['4340000000000001', '9007199254740994'],
    ['4340000000000002', '9007199254740996'],
  ];

  it.each(samples)('0x%s → %s', (bits, text) => {
    expect(canonicalJson(double(bits))).toBe(text);
    expect(canonicalJson([double(bits)])).toBe(`[${text}]`);
    expect(canonicalJson({ n: double(bits) })).toBe(`{"n":${text}}`);
  });

  it.each(['7fffffffffffffff', '7ff8000000000000', '7ff0000000000000', 'fff0000000000000'])(
    'refuses the NaN / Infinity pattern 0x%s with TX_MALFORMED (§3.2.2.3)',
    (bits) => {
      expect(thrownCode(() => canonicalJson(double(bits)))).toBe('TX_MALFORMED');
      expect(thrownCode(() => canonicalJson({ n: double(bits) }))).toBe('TX_MALFORMED');
    },
  );
});

describe('values JSON cannot carry', () => {
  class Point {
    constructor(
      readonly x: number,
      readonly y: number,
    ) {}
  }

  const refused: readonly [string, unknown][] = [
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
    ['NaN in an array', [1, NaN]],
    ['undefined', undefined],
    ['undefined as a property', { a: undefined }],
    ['undefined in an array', [1, undefined]],
    ['a hole in an array', [1, , 3]], // eslint-disable-line no-sparse-arrays
    ['a function', () => 1],
    ['a function as a property', { f: () => 1 }],
    ['a symbol', Symbol('s')],
    ['a bigint', 1n],
    ['a class instance', new Point(1, 2)],
    ['a Date', new Date(0)],
    ['a Map', new Map([['a', 1]])],
    ['a Uint8Array', new Uint8Array([1])],
    ['a nested class instance', { p: [new Point(1, 2)] }],
    ['a lone high surrogate', '\ud800'],
    ['a lone low surrogate', 'x\udc00'],
    ['reversed surrogates', '\ude00\ud83d'],
    ['a lone surrogate in a key', { '\ud800': 1 }],
    ['a lone surrogate deep inside', { a: [{ b: '\udfff' }] }],
  ];

  it.each(refused)('refuses %s with TX_MALFORMED', (_name, value) => {
    expect(thrownCode(() => canonicalJson(value))).toBe('TX_MALFORMED');
    expect(thrownCode(() => canonicalBytes(value))).toBe('TX_MALFORMED');
  });

  it('refuses nesting deeper than the limit', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 200; i++) deep = [deep];
    expect(thrownCode(() => canonicalJson(deep))).toBe('TX_MALFORMED');
  });

  it('accepts modest nesting, null-prototype objects and a correct surrogate pair', () => {
    let nested: unknown = 'x';
    for (let i = 0; i < 20; i++) nested = { a: [nested] };
    expect(canonicalJson(nested)).toBe('{"a":['.repeat(20) + '"x"' + ']}'.repeat(20));
    const bare = Object.create(null) as Record<string, unknown>;
    bare['b'] = 1;
    bare['a'] = 2;
    expect(canonicalJson(bare)).toBe('{"a":2,"b":1}');
    expect(canonicalJson('\ud83d\ude00')).toBe('"\ud83d\ude00"');
  });

  it('says what was wrong in a MedledgerError', () => {
    try {
      canonicalJson({ n: NaN });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(MedledgerError);
      expect((e as MedledgerError).code).toBe('TX_MALFORMED');
    }
  });
});

describe('parseJson', () => {
  it('parses JSON text', () => {
    expect(parseJson('{"a":[1,"two",null,true]}')).toEqual({ a: [1, 'two', null, true] });
    expect(parseJson(' 42 ')).toBe(42);
  });

  it.each(['', '{', '{"a":1,}', "{'a':1}", 'NaN', '[1,]', '01', '{"a":1} x', 'undefined', '"\\x"'])(
    'refuses %j with INVALID_JSON',
    (text) => {
      expect(thrownCode(() => parseJson(text))).toBe('INVALID_JSON');
    },
  );

  it('keeps the parser error as the cause', () => {
    try {
      parseJson('{');
      expect.unreachable();
    } catch (e) {
      expect((e as MedledgerError).cause).toBeInstanceOf(SyntaxError);
    }
  });
});
