import { makeError } from 'ethers';
import { MASK, errorMessage, redactedError, redactUrl, redactUrlsIn } from '../../shared/redact';
import { endpointRequest } from '../../shared/chain/provider';

describe('redactUrl', () => {
  it.each([
    ['userinfo', 'https://alice:s3cret@rpc.example:8545/', `https://${MASK}@rpc.example:8545/`],
    ['a user without a password', 'https://token@rpc.example', `https://${MASK}@rpc.example`],
    [
      'query values, keeping the names',
      'https://rpc.example/?apikey=abc&net=main',
      `https://rpc.example/?apikey=${MASK}&net=${MASK}`,
    ],
    ['a bare query token', 'https://rpc.example/rpc?SECRETTOKEN', `https://rpc.example/rpc?${MASK}`],
    [
      'an Infura key',
      'https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef',
      `https://mainnet.infura.io/v3/${MASK}`,
    ],
    [
      'an Alchemy key',
      'https://eth-mainnet.g.alchemy.com/v2/aBcD-eFgH_1234567890xyzXYZ',
      `https://eth-mainnet.g.alchemy.com/v2/${MASK}`,
    ],
    ['a short key after a version segment', 'https://rpc.example/v1/k3y', `https://rpc.example/v1/${MASK}`],
    [
      'a long token anywhere in the path',
      'https://x.quiknode.pro/4f9c0a1b2c3d4e5f6a7b8c9d/',
      `https://x.quiknode.pro/${MASK}/`,
    ],
    ['a fragment', 'https://rpc.example/#token', `https://rpc.example/#${MASK}`],
    ['a relative request URL', '/api/status?code=w_Eg-0N2uvtEW6slriwsjYUKbvTyGnm4', `/api/status?code=${MASK}`],
  ])('masks %s', (_, url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });

  it('leaves a URL without secrets exactly as it is', () => {
    for (const url of [
      'https://kv-bank-a.vault.azure.net',
      'http://127.0.0.1:8545',
      'https://rpc.consortium.example/rpc/',
      'https://127.0.0.1:44331/keys/signer-bank-a',
      'https://kv.example/secrets/pseudonymization-key',
    ])
      expect(redactUrl(url)).toBe(url);
  });

  it('masks everything at once and keeps the host and port', () => {
    const url = 'https://u:p@rpc.example:443/v3/0123456789abcdef0123456789abcdef?apikey=SECRET&x=1#frag';
    expect(redactUrl(url)).toBe(`https://${MASK}@rpc.example:443/v3/${MASK}?apikey=${MASK}&x=${MASK}#${MASK}`);
  });
});

describe('redactUrlsIn', () => {
  it('redacts every URL in an ethers error message, quoted in JSON or not', () => {
    const message =
      'server response 500 Internal Server Error (request={  }, response={  }, error=null, info={ "requestUrl": ' +
      '"http://user:pa55word@127.0.0.1:33151/v3/abcdefabcdef0123456789abcdef?apikey=SECRETQ", "responseBody": "boom" })';
    const redacted = redactUrlsIn(message);
    for (const secret of ['pa55word', 'user:', 'abcdefabcdef0123456789abcdef', 'SECRETQ'])
      expect(redacted).not.toContain(secret);
    expect(redacted).toContain(`"requestUrl": "http://${MASK}@127.0.0.1:33151/v3/${MASK}?apikey=${MASK}"`);
    expect(redacted).toContain('"responseBody": "boom"');
  });

  it('redacts each URL of a list and the keys of connection strings', () => {
    const text =
      'endpoints https://a:b@one.example/x?k=1, https://two.example/v2/key2; storage ' +
      'DefaultEndpointsProtocol=http;AccountName=banka;AccountKey=c2VjcmV0a2V5;TableEndpoint=http://127.0.0.1:1/banka; ' +
      'ai InstrumentationKey=0000-1111;IngestionEndpoint=https://ai.example/';
    expect(redactUrlsIn(text)).toBe(
      `endpoints https://${MASK}@one.example/x?k=${MASK}, https://two.example/v2/${MASK}; storage ` +
        `DefaultEndpointsProtocol=http;AccountName=banka;AccountKey=${MASK};TableEndpoint=http://127.0.0.1:1/banka; ` +
        `ai InstrumentationKey=${MASK};IngestionEndpoint=https://ai.example/`
    );
  });

  it('leaves text without URLs or keys alone', () => {
    const text = 'submit: nonce 4 was used by a transaction that is not in this write-ahead log';
    expect(redactUrlsIn(text)).toBe(text);
  });
});

/** A batch's calldata (credit records), quoted whole in the message of an ethers error about its request. */
const data = '0x' + 'ab'.repeat(50_000);
/** eth_estimateGas failing as ethers reports it, with the node's answer `answer`. */
const failedEstimate = (answer: string): Error =>
  makeError('missing revert data', 'CALL_EXCEPTION', {
    action: 'estimateGas',
    data: null,
    reason: null,
    transaction: { to: null, data },
    invocation: null,
    revert: null,
    info: { error: { code: -32003, message: answer } },
  });

describe('errorMessage', () => {
  it('is the redacted message of an error or of anything thrown', () => {
    expect(errorMessage(new Error('GET https://u:p@x.example/ failed'))).toBe(`GET https://${MASK}@x.example/ failed`);
    expect(errorMessage('https://x.example/?token=t')).toBe(`https://x.example/?token=${MASK}`);
  });

  it("is an ethers error's short message and the node's answer, without the request it quotes", () => {
    const err = failedEstimate('Out of gas: gas required exceeds allowance: 4000000');
    expect(err.message).toContain(data);
    expect(errorMessage(err)).toBe('missing revert data (Out of gas: gas required exceeds allowance: 4000000)');
    const timeout = makeError('request timeout', 'TIMEOUT', { operation: 'send', reason: 'timeout' });
    expect(errorMessage(timeout)).toBe('request timeout');
  });
});

describe('redactedError', () => {
  it('is a copy with the short, redacted message, in its stack too, and leaves the original as it is', () => {
    const err = failedEstimate('out of gas at https://u:p@rpc.example/');
    const copy = redactedError(err);
    expect(copy.name).toBe(err.name);
    expect(copy.message).toBe(`missing revert data (out of gas at https://${MASK}@rpc.example/)`);
    expect(copy.stack!.startsWith(`Error: ${copy.message}\n`)).toBe(true);
    expect(copy.stack).not.toContain(data);
    expect(copy.stack).toContain('redact.test');
    expect(err.message).toContain(data);
  });
});

describe("the chain's JSON-RPC requests", () => {
  it('carry the redacted URL, the one ethers quotes in its errors (the real one is used on the wire only)', () => {
    const url = 'https://u:p@rpc.example/v3/0123456789abcdef0123456789abcdef?apikey=k';
    const request = endpointRequest(url, 1_000);
    expect(request.url).toBe(`https://${MASK}@rpc.example/v3/${MASK}?apikey=${MASK}`);
    expect(request.clone().url).toBe(request.url);
    expect(request.timeout).toBe(1_000);
    expect(endpointRequest('http://127.0.0.1:8545', 1_000).url).toBe('http://127.0.0.1:8545');
  });
});
