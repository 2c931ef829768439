/** The product targets Node.js 22 (the Azure Functions default); npm scripts must run on the project's Node 22. */
describe('runtime', () => {
  it('is Node.js 22', () => {
    expect(process.versions.node.split('.')[0]).toBe('22');
  });
});
