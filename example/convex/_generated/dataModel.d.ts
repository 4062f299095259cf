/* eslint-disable */
/**
 * Hand-written stand-in for the file `npx convex dev` generates; a real
 * `npx convex dev` or `npx convex codegen` overwrites it.
 */
import type { DataModelFromSchemaDefinition, DocumentByName, TableNamesInDataModel } from "convex/server";
import type { GenericId } from "convex/values";
import schema from "../schema.js";

export type DataModel = DataModelFromSchemaDefinition<typeof schema>;
export type TableNames = TableNamesInDataModel<DataModel>;
export type Doc<TableName extends TableNames> = DocumentByName<DataModel, TableName>;
export type Id<TableName extends TableNames | "_storage" | "_scheduled_functions"> = GenericId<TableName>;
