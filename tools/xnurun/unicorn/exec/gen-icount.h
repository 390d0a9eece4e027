/*
 * xnurun's replacement for unicorn 2.1.5's qemu/include/exec/gen-icount.h
 * (GPL-2.0-or-later, from QEMU). .cargo/build-xnurun puts this directory
 * first in the C compiler's quote-include path (-iquote), so unicorn's
 * translator (accel/tcg/translator.c) includes this file instead of its own.
 *
 * Why: every translated block starts by asking whether the CPU should stop
 * (an emu_stop from a hook, an interrupt). Unicorn asks with a call to a C
 * helper, check_exit_request, at the start of every block; QEMU asks with
 * one load of icount_decr and a branch, and leaves the TB through
 * TB_EXIT_REQUESTED, which cpu_tb_exec handles. A tight loop is one block
 * an iteration, and the helper call doubled its time (bench/results.md,
 * "Measurements behind design choices"). This file asks as QEMU does.
 *
 * The answer is the same: cpu_exit sets icount_decr.u16.high to -1, the
 * word is then negative, and both paths leave the block before its first
 * instruction. The helper's extra work is for MIPS delay slots (kept below:
 * a target that sets delay_slot_flag still calls it) and for macOS's JIT
 * write protection (tb_exec_unlock), which cpu_tb_exec also does.
 */
#ifndef GEN_ICOUNT_H
#define GEN_ICOUNT_H

#include "qemu/timer.h"

static inline void gen_io_start(TCGContext *tcg_ctx)
{
    TCGv_i32 one = tcg_const_i32(tcg_ctx, 1);
    tcg_gen_st_i32(tcg_ctx, one, tcg_ctx->cpu_env,
                   offsetof(ArchCPU, parent_obj.can_do_io) -
                   offsetof(ArchCPU, env));
    tcg_temp_free_i32(tcg_ctx, one);
}

static inline void gen_io_end(TCGContext *tcg_ctx)
{
    TCGv_i32 zero = tcg_const_i32(tcg_ctx, 0);
    tcg_gen_st_i32(tcg_ctx, zero, tcg_ctx->cpu_env,
                   offsetof(ArchCPU, parent_obj.can_do_io) -
                   offsetof(ArchCPU, env));
    tcg_temp_free_i32(tcg_ctx, zero);
}

/* Where gen_tb_start's branch goes, bound by gen_tb_end. Both run in
 * translator_loop, one block at a time on the translating thread, so
 * one slot a thread holds it without a field in TCGContext. */
static inline TCGLabel **xnurun_exit_request_label(void)
{
    static __thread TCGLabel *label;
    return &label;
}

static inline void gen_tb_start(TCGContext *tcg_ctx, TranslationBlock *tb)
{
    TCGLabel **label = xnurun_exit_request_label();
    *label = NULL;
    if (tcg_ctx->delay_slot_flag != NULL) {
        TCGv_ptr puc = tcg_const_ptr(tcg_ctx, tcg_ctx->uc);
        TCGv_i32 in_slot = tcg_const_i32(tcg_ctx, 0);
        tcg_gen_mov_i32(tcg_ctx, in_slot, tcg_ctx->delay_slot_flag);
        gen_helper_check_exit_request(tcg_ctx, puc, in_slot);
        tcg_temp_free_i32(tcg_ctx, in_slot);
        tcg_temp_free_ptr(tcg_ctx, puc);
        return;
    }
    TCGv_i32 count = tcg_temp_new_i32(tcg_ctx);
    *label = gen_new_label(tcg_ctx);
    tcg_gen_ld_i32(tcg_ctx, count, tcg_ctx->cpu_env,
                   offsetof(ArchCPU, neg.icount_decr.u32) -
                   offsetof(ArchCPU, env));
    tcg_gen_brcondi_i32(tcg_ctx, TCG_COND_LT, count, 0, *label);
    tcg_temp_free_i32(tcg_ctx, count);
}

static inline void gen_tb_end(TCGContext *tcg_ctx, TranslationBlock *tb, int num_insns)
{
    TCGLabel **label = xnurun_exit_request_label();
    if (tcg_ctx->delay_slot_flag != NULL) {
        tcg_temp_free_i32(tcg_ctx, tcg_ctx->delay_slot_flag);
    }
    tcg_ctx->delay_slot_flag = NULL;
    if (tb_cflags(tb) & CF_USE_ICOUNT) {
        tcg_set_insn_param(tcg_ctx->icount_start_insn, 1, num_insns);
    }
    if (*label != NULL) {
        gen_set_label(tcg_ctx, *label);
        *label = NULL;
    }
    tcg_gen_exit_tb(tcg_ctx, tb, TB_EXIT_REQUESTED);
}

#endif
