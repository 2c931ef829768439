import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * infra/ against the Azure resource type schemas (the ones the Bicep compiler uses), through infra/check-schemas.js,
 * since no Bicep compiler can be installed here. The schemas are the shared folder beside the repository
 * (../shared/azure-resource-types): without it these tests fail, they do not pass in silence. The second half
 * proves the checker can fail: each kind of mistake it claims to catch, in a small Bicep snippet.
 */

interface Result {
  problems: string[];
  unchecked: { type: string; file: string; reason: string }[];
  resources: number;
}

interface Checker {
  checkSources(sources: { file: string; text: string }[], typesDir: string): Result;
  checkFiles(files?: string[], typesDir?: string): Result;
  findTypesDir(explicit?: string): string;
  AWAITING_SCHEMA: Record<string, string>;
}

const checker = jest.requireActual<Checker>('../../infra/check-schemas');
const root = join(__dirname, '..', '..');
const script = join(root, 'infra', 'check-schemas.js');

describe('infra/ against the resource type schemas', () => {
  // Throws, naming the folder it looked for, when the shared schemas are absent.
  const typesDir = checker.findTypesDir();

  it('has no problem in any Bicep file of infra/', () => {
    const result = checker.checkFiles(undefined, typesDir);
    expect(result.problems).toEqual([]);
    expect(result.resources).toBeGreaterThanOrEqual(40);
  });

  it('leaves unchecked only the types whose schema is awaited, each listed with its reason', () => {
    const { unchecked } = checker.checkFiles(undefined, typesDir);
    expect([...new Set(unchecked.map((u) => u.type))]).toEqual(Object.keys(checker.AWAITING_SCHEMA));
    expect(Object.keys(checker.AWAITING_SCHEMA)).toEqual([
      'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31',
    ]);
  });

  it('runs as a command: exit 0 on infra/, 2 with a clear message when the schemas are missing', () => {
    const ok = spawnSync(process.execPath, [script, '--types', typesDir], { encoding: 'utf8' });
    expect(ok.stderr).toContain('0 problem(s)');
    expect(ok.status).toBe(0);
    const missing = spawnSync(process.execPath, [script, '--types', join(root, 'no-such-folder')], {
      encoding: 'utf8',
    });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/no Azure resource type schemas at .*no-such-folder/);
  });
});

describe('the schema checker fails on', () => {
  const typesDir = checker.findTypesDir();
  const check = (text: string): string[] => checker.checkSources([{ file: 'snippet.bicep', text }], typesDir).problems;

  it('a misspelled property and a wrong API version', () => {
    const problems = check(`
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv-example'
  location: 'westeurope'
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'premium' }
    enableRbacAuthorisation: true
  }
}

resource plan 'Microsoft.Web/serverfarms@2099-01-01' = {
  name: 'plan-example'
  location: 'westeurope'
}
`);
    expect(problems).toEqual([
      'snippet.bicep:8: properties.enableRbacAuthorisation: no such property in VaultProperties',
      "snippet.bicep:12: resource plan 'Microsoft.Web/serverfarms@2099-01-01': no such type and API version in the schemas (the schemas have Microsoft.Web/serverfarms@2024-04-01)",
    ]);
  });

  it('a type that is not in the schemas at all', () => {
    expect(check("resource x 'Microsoft.Nothing/things@2024-01-01' = {\n  name: 'x'\n}\n")).toEqual([
      "snippet.bicep:1: resource x 'Microsoft.Nothing/things@2024-01-01': no such type and API version in the schemas (no version of Microsoft.Nothing/things at all)",
    ]);
  });

  it('a missing required property, a wrong case, a read-only property, a value outside an enum, a wrong type', () => {
    const problems = check(`
resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid('x')
  properties: {
    RoleDefinitionId: 'x'
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func-example'
  location: 'westeurope'
  properties: {
    defaultHostName: 'example.azurewebsites.net'
    httpsOnly: 'yes'
    siteConfig: { minTlsVersion: '1.2', ftpsState: 'Sometimes' }
  }
}
`);
    expect(problems).toEqual(
      expect.arrayContaining([
        'snippet.bicep:5: properties.RoleDefinitionId: spelled "roleDefinitionId" in RoleAssignmentProperties',
        'snippet.bicep:4: properties lacks the required property roleDefinitionId (RoleAssignmentProperties)',
        'snippet.bicep:4: properties lacks the required property principalId (RoleAssignmentProperties)',
        'snippet.bicep:13: properties.defaultHostName: read-only in SiteProperties',
        'snippet.bicep:14: properties.httpsOnly is "yes", expected boolean',
      ])
    );
    // ftpsState is an enum that also admits any string, as in the schema: not a problem.
    expect(problems).toHaveLength(5);
  });

  it('a property of the wrong shape of a type chosen by its name (sites/config authsettingsV2)', () => {
    const problems = check(`
resource auth 'Microsoft.Web/sites/config@2024-04-01' = {
  name: 'authsettingsV2'
  properties: {
    requireAuthentication: true
    globalValidation: { unauthenticatedClientAction: 'Return402' }
  }
}
`);
    expect(problems).toEqual([
      'snippet.bicep:5: properties.requireAuthentication: no such property in SiteAuthSettingsV2Properties',
      "snippet.bicep:6: properties.globalValidation.unauthenticatedClientAction is \"Return402\", expected 'RedirectToLoginPage' | 'AllowAnonymous' | 'Return401' | 'Return403'",
    ]);
  });

  it('a sites/config name that is none of the config kinds', () => {
    expect(
      check("resource c 'Microsoft.Web/sites/config@2024-04-01' = {\n  name: 'authsettingsV3'\n  properties: {}\n}\n")
    ).toEqual([
      expect.stringMatching(
        /^snippet\.bicep:2: name "authsettingsV3" is none of microsoft\.web\/sites\/config's: appsettings, /
      ),
    ]);
  });

  it('mistakes inside loops, conditions, arrays and one-line objects', () => {
    const problems = check(`
resource zones 'Microsoft.Network/privateDnsZones@2020-06-01' = [
  for z in ['a', 'b']: {
    name: z
    location: 'global'
    propertys: {}
  }
]

resource pe 'Microsoft.Network/privateEndpoints@2024-05-01' = if (true) {
  name: 'pe'
  location: 'westeurope'
  properties: {
    privateLinkServiceConnections: [
      { name: 'c', properties: { privateLinkServiceId: 'x', groupId: ['blob'] } }
    ]
  }
}
`);
    expect(problems).toEqual([
      'snippet.bicep:6: propertys: no such property in Microsoft.Network/privateDnsZones',
      'snippet.bicep:15: properties.privateLinkServiceConnections[].properties.groupId: no such property in PrivateLinkServiceConnectionProperties',
    ]);
  });

  it('a module param that does not exist, a required one not passed, an output that does not exist', () => {
    const problems = checker.checkSources(
      [
        {
          file: 'infra/snippet.bicep',
          text: `
module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    location: 'westeurope'
    tag: {}
    name: 'id-example'
  }
}

output x string = identity.outputs.objectId
`,
        },
      ],
      typesDir
    ).problems;
    expect(problems).toEqual([
      'infra/snippet.bicep:6: module identity: infra/modules/identity.bicep has no param tag',
      'infra/snippet.bicep:2: module identity: param tags of infra/modules/identity.bicep is required but not passed',
      'infra/snippet.bicep:11: identity.outputs.objectId: infra/modules/identity.bicep has no such output',
    ]);
  });

  it('Bicep it cannot read, rather than skipping it', () => {
    expect(
      check(`
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv'
  resource key 'keys' = {
    name: 'k'
  }
}
`)
    ).toEqual(['snippet.bicep:4: nested resource declarations are not supported by this checker']);
  });

  it('an awaited schema that has arrived (the list cannot go stale)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'types-'));
    try {
      const awaited = Object.keys(checker.AWAITING_SCHEMA)[0]!;
      writeFileSync(
        join(dir, 'arrived.json'),
        JSON.stringify([
          { $type: 'ObjectType', name: 'x', properties: {} },
          { $type: 'ResourceType', name: awaited, body: { $ref: '#/0' } },
        ])
      );
      expect(checker.checkSources([], dir).problems).toEqual([
        `${awaited} is listed in AWAITING_SCHEMA (infra/check-schemas.js) but its schema is present: remove the entry`,
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
