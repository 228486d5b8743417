/**
 * How a dataset reaches this server, in words.
 */
import { IDataset } from '../types';

export interface IMountLabel {
  text: string;
  level: 'ok' | 'warn' | 'info';
}

function homeRelative(path: string): string {
  return path.replace(/^\/home\/[^/]+\//, '~/');
}

export function mountLabel(dataset: IDataset): IMountLabel {
  switch (dataset.mount_status) {
    case 'mounted':
      return {
        text: `mounted read-only at ${homeRelative(dataset.mount_path ?? '')}`,
        level: 'ok'
      };
    case 'missing':
      return {
        text: 'added since your server started: restart your server to mount it',
        level: 'warn'
      };
    default:
      return {
        text: 'read from object storage with the snippet (not mounted)',
        level: 'info'
      };
  }
}
