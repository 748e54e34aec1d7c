/**
 * REST API types for the reading viewer: names for the components of
 * `generated.ts`, which is produced from the backend's OpenAPI schema
 * (`npm run schema && npm run gen:api`; a unit test fails when it is stale).
 * Where the schema is looser than the contract (points as number[][], values
 * as a name -> number map, free-form PUT bodies), the narrowed types are
 * derived from the generated ones and the checks at the bottom keep them
 * assignable to the schema: a field the backend renames or retypes breaks the
 * build here, not at run time.
 */
import type { components } from './generated';

type Schemas = components['schemas'];

export type AssignmentStatus = 'not_started' | 'in_progress' | 'submitted';
export type Phase = Schemas['AssignmentDetailPhaseEnum'];
export type AssignmentKind = Schemas['AssignmentDetailKindEnum'];

/** Series roles the viewer hangs ('sagittal_t2', 'sagittal_t1', 'axial_t2'); others are listed, not hung. */
export type SeriesRole = Schemas['Series']['role'];

export type AiSegmentation = Schemas['AISegmentation'];
export type Series = Schemas['Series'];
export type Case = Schemas['Case'];
export type Category = Schemas['Category'];
/** fixed, ordered categories: grades are ordinal */
export type Scale = Schemas['Scale'];
export type SubQuestion = Schemas['SubQuestion'];
export type Condition = Schemas['Condition'];
export type MeasurementKind = Schemas['KindA1bEnum'];
export type MeasurementSpec = Schemas['MeasurementTask'];
export type SegmentationLabel = Schemas['SegmentationLabel'];
export type SegmentationSpec = Schemas['SegmentationTask'];
export type Protocol = Schemas['Protocol'];
/** condition: a condition key, or a sub-question key for sub-question answers */
export type Grade = Schemas['Grade'];
export type ReaderSegmentation = Schemas['ReaderSegmentation'];
export type LabelsSaveResponse = Schemas['ReaderSegmentation'];
export type MissingItem = Schemas['MissingItem'];
export type Comparison = Schemas['Compare'];
/** Reader vs reader (adjudicators, leads): B minus A in every delta. */
export type ReadersComparison = Schemas['ReadersComparison'];
export type PairValue = Schemas['PairValue'];
export type CompareValue = Schemas['CompareValue'];
export type CompareGrade = Schemas['CompareGrade'];
export type CompareLevel = Schemas['CompareLevel'];
export type CompareStructure = Schemas['CompareStructure'];

export type Point3 = [number, number, number];

/** The schema's `values` ({name: number}) narrowed to what each kind carries. */
export type MeasurementValues =
  | { length_mm: number }
  | { area_mm2: number }
  | { anterior_mm: number; middle_mm: number; posterior_mm: number };

/**
 * The schema's Measurement with its points as (x, y, z) in patient
 * coordinates (LPS, mm) and its values narrowed by kind; the server checks
 * both and recomputes the values.
 */
export type Measurement = Omit<Schemas['Measurement'], 'points_mm' | 'values'> & {
  points_mm: Point3[];
  values: MeasurementValues;
};

export type Read = Omit<Schemas['Read'], 'measurements'> & { measurements: Measurement[] };
export type PreviousRead = Read;

export type Assignment = Omit<Schemas['AssignmentDetail'], 'read' | 'previous_reads' | 'status'> & {
  status: AssignmentStatus;
  read: Read;
  previous_reads: Read[];
};

/** PUT read body; the schema types grades and measurements as free-form objects. */
export interface ReadUpdateRequest {
  base_version: number;
  grades: Grade[];
  measurements: Measurement[];
  elapsed_s: number;
}

export type ReadSubmitRequest = Schemas['ReadSubmitInput'];

/** Body of 412 Precondition Failed on a stale base_version. */
export type StaleVersionError = Omit<Schemas['StaleRead'], 'current'> & { current: Read };

/** Body of 400 on a submit with required answers missing. */
export type MissingGradesError = Schemas['SubmitRefused'];

// ---- compile-time agreement with the generated schema ---------------------
type Assert<T extends true> = T;
type Extends<A, B> = [A] extends [B] ? true : false;
export type SchemaChecks = [
  Assert<Extends<Measurement, Schemas['Measurement']>>,
  Assert<Extends<Read, Schemas['Read']>>,
  Assert<Extends<ReadUpdateRequest, Schemas['ReadSaveInput']>>,
  Assert<Extends<Assignment['status'], Schemas['AssignmentDetail']['status']>>,
  Assert<Extends<MeasurementValues, Schemas['Measurement']['values']>>,
];
