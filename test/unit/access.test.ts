import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { APP_ROLES, checkAccess, protectedAuthLevel } from '../../shared/access';

/** Easy Auth cannot run here: these are the headers it sets (X-MS-CLIENT-PRINCIPAL, base64 JSON). */
const principal = (roles: string[], roleType = 'roles'): string =>
  Buffer.from(
    JSON.stringify({
      auth_typ: 'aad',
      name_typ: 'name',
      role_typ: roleType,
      claims: [{ typ: 'name', val: 'loan-app' }, ...roles.map((val) => ({ typ: roleType, val }))],
    })
  ).toString('base64');

describe('route access', () => {
  it('needs the route’s app role in Azure: 403 without it, 401 without a principal', () => {
    const ops = principal([APP_ROLES.operationsRead]);
    expect(checkAccess('azure', ops, APP_ROLES.operationsRead, 'True')).toEqual({ allowed: true });
    expect(checkAccess('azure', ops, APP_ROLES.creditRecordsRead, 'True')).toEqual({
      allowed: false,
      status: 403,
      error: 'this route needs the app role CreditRecords.Read',
    });
    expect(checkAccess('azure', null, APP_ROLES.creditRecordsRead, 'True')).toMatchObject({ status: 401 });
    expect(checkAccess('azure', 'not base64 json', APP_ROLES.creditRecordsRead, 'True')).toMatchObject({
      status: 401,
    });
  });

  it('reads roles by the role claim type the principal names', () => {
    const custom = principal(
      [APP_ROLES.creditRecordsRead],
      'http://schemas.microsoft.com/ws/2008/06/identity/claims/role'
    );
    expect(checkAccess('azure', custom, APP_ROLES.creditRecordsRead, 'True')).toEqual({ allowed: true });
  });

  it('stays closed in Azure when App Service authentication is off (a principal header could be forged then)', () => {
    const forged = principal([APP_ROLES.creditRecordsRead, APP_ROLES.operationsRead]);
    expect(checkAccess('azure', forged, APP_ROLES.creditRecordsRead, undefined)).toMatchObject({ status: 503 });
    expect(checkAccess('azure', forged, APP_ROLES.creditRecordsRead, 'False')).toMatchObject({ status: 503 });
  });

  it('leaves the local stack to the local host’s function keys', () => {
    expect(checkAccess('local', null, APP_ROLES.operationsRead, undefined)).toEqual({ allowed: true });
    expect(protectedAuthLevel('local')).toBe('function');
    expect(protectedAuthLevel('azure')).toBe('anonymous');
  });

  it('uses the roles the app registration defines', () => {
    const defined = (
      JSON.parse(readFileSync(join(__dirname, '../../infra/entra/app-roles.json'), 'utf8')) as { value: string }[]
    ).map((r) => r.value);
    expect(defined.sort()).toEqual(Object.values(APP_ROLES).sort());
  });
});
