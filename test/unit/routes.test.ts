import { compileRoute } from '../../local/host/routes';

describe('HTTP route templates', () => {
  it('matches literals case-insensitively and extracts parameters', () => {
    expect(compileRoute('credit-records/{subjectRef}').match('Credit-Records/abc%2Bd')).toEqual({
      subjectRef: 'abc+d',
    });
    expect(compileRoute('credit-records/{subjectRef}').match('credit-records')).toBeUndefined();
    expect(compileRoute('credit-records/{subjectRef}').match('credit-records/a/b')).toBeUndefined();
  });

  it('honours constraints, optional and catch-all parameters', () => {
    expect(compileRoute('items/{id:int}').match('items/12')).toEqual({ id: '12' });
    expect(compileRoute('items/{id:int}').match('items/x')).toBeUndefined();
    expect(compileRoute('items/{id?}').match('items')).toEqual({});
    expect(compileRoute('files/{*path}').match('files/a/b/c')).toEqual({ path: 'a/b/c' });
  });

  it('rejects a template it cannot read', () => {
    expect(() => compileRoute('items/{id')).toThrow('cannot read segment "{id"');
  });

  it('does not match a malformed percent-encoding', () => {
    expect(compileRoute('items/{id}').match('items/%E0%A4%A')).toBeUndefined();
  });
});
