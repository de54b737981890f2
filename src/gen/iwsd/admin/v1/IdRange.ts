// Original file: proto/admin.proto


export interface IdRange {
  'start'?: (number);
  'size'?: (number);
}

export interface IdRange__Output {
  'start': (number);
  'size': (number);
}
