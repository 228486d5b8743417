import { IDataset } from '../types';
import { mountLabel } from './datasets';

function dataset(overrides: Partial<IDataset>): IDataset {
  return {
    name: 'iris',
    uri: 's3://team/iris.csv',
    format: 'csv',
    description: null,
    mount_path: '/home/jovyan/datasets/iris',
    mount_status: 'mounted',
    read_only: true,
    ...overrides
  };
}

describe('mountLabel', () => {
  it.each([
    [
      'mounted',
      '/home/jovyan/datasets/iris',
      'mounted read-only at ~/datasets/iris',
      'ok'
    ],
    ['mounted', '/data/iris', 'mounted read-only at /data/iris', 'ok'],
    [
      'missing',
      '/home/jovyan/datasets/iris',
      'added since your server started: restart your server to mount it',
      'warn'
    ],
    [
      'not-mounted',
      null,
      'read from object storage with the snippet (not mounted)',
      'info'
    ]
  ])('%s at %p reads %p', (status, path, text, level) => {
    expect(
      mountLabel(dataset({ mount_status: status, mount_path: path }))
    ).toEqual({
      text,
      level
    });
  });
});
