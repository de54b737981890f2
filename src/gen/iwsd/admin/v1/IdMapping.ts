// Original file: proto/admin.proto


export interface IdMapping {
  'containerId'?: (number);
  'hostId'?: (number);
  'size'?: (number);
}

export interface IdMapping__Output {
  'containerId': (number);
  'hostId': (number);
  'size': (number);
}
